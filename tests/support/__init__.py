"""What tests share, so that test modules import from here and never from one another.

client (the app over HTTP as one project: `Api`, paging, runs, uploads), data (constants spelled
once), domain (writes through the domain services), failing_views (read models made to fail),
stores (PostgreSQL template clones, SQLite templates, a store's raw bytes), servers and cli (the
real command as a process, or in this process), targets (ids for the fuzzers), views (read models).
"""
