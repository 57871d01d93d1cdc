// Placeholder: filled in by the facility's change.
