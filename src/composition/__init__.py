"""The composition root: builds one process's services over one store, for the API, CLI, scripts and tests."""
