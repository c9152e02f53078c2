"""Change data capture: a source's log of changes, applied like a sync."""
