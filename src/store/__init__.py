"""Infrastructure: databases, sealing with data keys, accounts, files and shared secrets."""
