"""Data: reading and writing structures, the datasets and their downloads, equivalent settings and cells."""
