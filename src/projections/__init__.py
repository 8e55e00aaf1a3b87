"""Read models: each projection folds the event stream into its own tables and tracks its position."""
