"""One ``func.Blueprint`` per area. Triggers here only parse, call one function, and answer."""
