"""Checkpoint: the checkpoint file (`record`) and the functions from a checkpoint to a checkpoint (`ship`,
`run_state`). Loading a checkpoint is public API: the names of `nesf.checkpoint.record` are importable from here."""

from nesf.checkpoint.record import (FORMAT, FORMAT_VERSION, REQUIRED_KEYS, Checkpoint, CheckpointInfo, LatticeErrors,
                                    LatticeRefitRecord, SourceRecord, TrainingState, atlas_path_for,
                                    describe_load_error, file_sha256, list_checkpoints, read_checkpoint_info,
                                    read_payload, weights_sha256, write_payload)

__all__ = ["FORMAT", "FORMAT_VERSION", "REQUIRED_KEYS", "Checkpoint", "CheckpointInfo", "LatticeErrors",
           "LatticeRefitRecord", "SourceRecord", "TrainingState", "atlas_path_for", "describe_load_error",
           "file_sha256", "list_checkpoints", "read_checkpoint_info", "read_payload", "weights_sha256",
           "write_payload"]
