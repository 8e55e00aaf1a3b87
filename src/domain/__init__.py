"""Workflow aggregates, their events and errors, and the application service that changes them."""
