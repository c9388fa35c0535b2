"""The versioned tenant REST API: base classes, errors, pagination and routing."""
