"""Foundation: errors, atomic file writes, the device, configs, `Crystal`, lattices, grids, the canonical frame."""
