"""Page bodies: one module per page, thin over `app.ui` widget builders and the `nesf` library."""
