"""What one structure file may hold, for the app and the CLI alike: read by `nesf.data.structure_io`, shown by the
app's uploader. The paper's datasets have at most ~100 atoms a cell; a model's own range is narrower and is checked
later (`Autoencoder.check`)."""

MAX_FILE_BYTES = 5 * 1024 * 1024   # bytes of one file
MAX_ATOMS = 400                    # atoms of one structure, before and after its conversion to the conventional cell
