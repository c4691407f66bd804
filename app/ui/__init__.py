"""Widget builders shared by the pages."""
