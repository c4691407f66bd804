"""Model: the encoder and fields, batching, query sampling, the structure decoder, the model's range."""
