"""What a model can represent: the range its training crystals covered, and the checks that name what is outside it.

A model only knows the cells it was trained on: lattice lengths and angles, atoms per cell and elements within the
training set's range, atoms inside its bounding box (the global query grid). `ModelRange.problems(crystal)` lists
every way a crystal (in the canonical frame, `nesf.core.canonical`) falls outside, each a `RangeProblem`: its kind and a
sentence with the amount.
Lengths in Angstrom, angles in degrees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from nesf.core.crystal import Crystal

LENGTH_TOLERANCE = 0.5   # Angstrom beyond the longest training cell edge (and beyond the bounding box) still accepted
ANGLE_TOLERANCE = 2.0    # degrees beyond the training angles' range still accepted


PROBLEM_KINDS = {"element": "element not in the model's vocabulary", "atoms": "more atoms than the training cells",
                 "length": "cell edge too long", "angle": "cell angle outside the training range",
                 "box": "atoms outside the model's box"}


@dataclass(frozen=True)
class RangeProblem:
    kind: str      # one of PROBLEM_KINDS: element, atoms, length, angle, box
    message: str   # what is out of range and by how much, e.g. "c = 7.90 A; this model was trained on ... <= 6.00 A"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ModelRange:
    max_lengths_angstrom: tuple    # (3,) longest a, b and c of the training cells
    min_angle_degrees: float       # smallest alpha, beta or gamma of a training cell
    max_angle_degrees: float
    max_atoms: int                 # most atoms in a training cell
    box_min_angstrom: tuple        # (3,) the training atoms' bounding box (Cartesian, canonical frame)
    box_max_angstrom: tuple
    elements: tuple                # atomic numbers the model knows (its vocabulary)

    @classmethod
    def of(cls, crystals: list[Crystal], vocab, box_min, box_max) -> "ModelRange":
        """The range covered by training `crystals` (non-empty)."""
        lengths = np.array([c.lengths_angstrom for c in crystals])
        angles = np.array([c.angles_degrees for c in crystals])
        return cls(tuple(float(x) for x in lengths.max(axis=0)), float(angles.min()), float(angles.max()),
                   int(max(c.num_atoms for c in crystals)), tuple(float(x) for x in box_min),
                   tuple(float(x) for x in box_max), tuple(int(z) for z in vocab))

    @classmethod
    def from_box(cls, vocab, box_min, box_max) -> "ModelRange":
        """For checkpoints saved before the range was recorded: only the box and the elements are known."""
        extent = np.asarray(box_max, dtype=np.float64) - np.asarray(box_min, dtype=np.float64)
        return cls(tuple(float(x) for x in extent), 0.0, 180.0, 10**9, tuple(float(x) for x in box_min),
                   tuple(float(x) for x in box_max), tuple(int(z) for z in vocab))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelRange":
        return cls(tuple(float(x) for x in data["max_lengths_angstrom"]), float(data["min_angle_degrees"]),
                   float(data["max_angle_degrees"]), int(data["max_atoms"]),
                   tuple(float(x) for x in data["box_min_angstrom"]), tuple(float(x) for x in data["box_max_angstrom"]),
                   tuple(int(z) for z in data["elements"]))

    def problems(self, crystal: Crystal) -> list[RangeProblem]:
        """Each way `crystal` lies outside this range, with the amounts; empty when it fits. The box is checked only
        for a cell that fits otherwise (a cell too long is also out of the box, and saying so adds nothing)."""
        found = []
        unknown = sorted({int(z) for z in crystal.species} - set(self.elements))
        if unknown:
            found.append(RangeProblem("element", f"element(s) {', '.join(_symbol(z) for z in unknown)} not among the "
                                                 f"{len(self.elements)} this model was trained on"))
        if crystal.num_atoms > self.max_atoms:
            found.append(RangeProblem("atoms", f"{crystal.num_atoms} atoms in the cell; this model was trained on "
                                               f"cells of at most {self.max_atoms} atoms"))
        for name, length, limit in zip("abc", crystal.lengths_angstrom, self.max_lengths_angstrom):
            if length > limit + LENGTH_TOLERANCE:
                found.append(RangeProblem("length", f"{name} = {length:.2f} A; this model was trained on cells with "
                                                    f"{name} <= {limit:.2f} A and accepts up to "
                                                    f"{limit + LENGTH_TOLERANCE:.2f} A"))
        for name, angle in zip(("alpha", "beta", "gamma"), crystal.angles_degrees):
            if not self.min_angle_degrees - ANGLE_TOLERANCE <= angle <= self.max_angle_degrees + ANGLE_TOLERANCE:
                found.append(RangeProblem("angle", f"{name} = {angle:.1f} deg; this model was trained on angles from "
                                                   f"{self.min_angle_degrees:.1f} to {self.max_angle_degrees:.1f} deg "
                                                   f"and accepts {self.min_angle_degrees - ANGLE_TOLERANCE:.1f} to "
                                                   f"{self.max_angle_degrees + ANGLE_TOLERANCE:.1f} deg"))
        if crystal.num_atoms and not found:
            low = crystal.cart_coords.min(axis=0) - np.asarray(self.box_min_angstrom)
            high = crystal.cart_coords.max(axis=0) - np.asarray(self.box_max_angstrom)
            for i, (axis, below, above) in enumerate(zip("xyz", low, high)):
                if below < -LENGTH_TOLERANCE or above > LENGTH_TOLERANCE:
                    beyond = -below if below < -LENGTH_TOLERANCE else above
                    found.append(RangeProblem("box", f"atoms lie {beyond:.2f} A beyond the model's box along {axis} "
                                                     f"(the training atoms span {self.box_min_angstrom[i]:.1f} to "
                                                     f"{self.box_max_angstrom[i]:.1f} A)"))
        return found

    def summary(self) -> dict:
        """The range as a flat table for the model card."""
        return {
            "cell lengths a, b, c (A)": "<= " + ", ".join(f"{x:.2f}" for x in self.max_lengths_angstrom)
                                        + f" (uploads accepted up to {LENGTH_TOLERANCE:.2f} A longer)",
            "cell angles (deg)": f"{self.min_angle_degrees:.1f} to {self.max_angle_degrees:.1f} (uploads accepted "
                                 f"{ANGLE_TOLERANCE:.1f} deg beyond)",
            "atoms per cell": f"<= {self.max_atoms}" if self.max_atoms < 10**9 else "not recorded",
            "elements": f"{len(self.elements)}: {' '.join(_symbol(z) for z in sorted(self.elements))}",
            "bounding box (A)": " .. ".join(
                "(" + ", ".join(f"{x:.1f}" for x in corner) + ")"
                for corner in (self.box_min_angstrom, self.box_max_angstrom)),
        }


def _symbol(z: int) -> str:
    from pymatgen.core import Element

    return Element.from_Z(int(z)).symbol
