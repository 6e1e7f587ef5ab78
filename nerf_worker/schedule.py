"""When the grid grows and when empty space is masked: settings apart from the state they update.

As in gsplat's strategies, :class:`GridSchedule` holds only frozen settings, :meth:`initialize_state`
returns the mutable :class:`ScheduleState`, and :meth:`GridSchedule.step_post_backward` applies what
is due at a step to the model. The grid starts at ``n_voxels_init`` voxels and reaches
``n_voxels_final`` through voxel counts spaced evenly in log space, one per upsampling step (as in
TensoRF). An alpha-mask update marks cells whose one-step opacity is below ``alpha_mask_threshold``
as empty, so rendering skips them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nerf_worker.model import TensorVM, grid_resolution


@dataclass
class ScheduleState:
    """What the schedule has done so far."""

    n_voxels: int
    upsamples_done: int = 0
    alpha_mask_updates: int = 0
    empty_fraction: float = 0.0
    history: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ScheduleEvent:
    """What :meth:`GridSchedule.step_post_backward` changed at one step."""

    upsampled: bool = False
    masked: bool = False

    @property
    def params_replaced(self) -> bool:
        """The factors are new tensors: the optimiser must be rebuilt."""
        return self.upsampled


@dataclass(frozen=True)
class GridSchedule:
    """Upsampling and alpha-mask settings of one training run.

    Args:
        n_voxels_init: voxels of the initial grid.
        n_voxels_final: voxels after the last upsampling.
        upsample_steps: steps (after their optimiser update) at which the grid grows, ascending.
        alpha_mask_steps: steps at which the alpha mask is recomputed.
        alpha_mask_threshold: one-step opacity below which a cell is empty.
    """

    n_voxels_init: int
    n_voxels_final: int
    upsample_steps: tuple[int, ...] = ()
    alpha_mask_steps: tuple[int, ...] = ()
    alpha_mask_threshold: float = 1e-4

    def voxel_counts(self) -> list[int]:
        """The voxel count after each upsampling step (log-spaced, the last is ``n_voxels_final``)."""
        n = len(self.upsample_steps)
        if n == 0:
            return []
        counts = np.exp(np.linspace(np.log(self.n_voxels_init), np.log(self.n_voxels_final), n + 1))[1:]
        return [round(c) for c in counts]

    def initialize_state(self) -> ScheduleState:
        """The state before the first step."""
        return ScheduleState(n_voxels=self.n_voxels_init)

    def step_post_backward(self, step: int, model: TensorVM, state: ScheduleState) -> ScheduleEvent:
        """Apply whatever is due after the optimiser update of ``step``.

        Args:
            step: the 0-based training step that just finished.
            model: the field to edit in place.
            state: the schedule's state, updated.

        Returns:
            What changed; when ``params_replaced`` the caller rebuilds its optimiser.
        """
        upsampled = masked = False
        if step in self.alpha_mask_steps:
            state.empty_fraction = model.update_alpha_mask(self.alpha_mask_threshold)
            state.alpha_mask_updates += 1
            state.history.append(f"step {step}: alpha mask {state.empty_fraction:.0%} empty")
            masked = True
        if step in self.upsample_steps:
            state.n_voxels = self.voxel_counts()[self.upsample_steps.index(step)]
            model.upsample(grid_resolution(model.aabb, state.n_voxels))
            state.upsamples_done += 1
            state.history.append(f"step {step}: grid {'x'.join(map(str, model.resolution))}")
            upsampled = True
        return ScheduleEvent(upsampled=upsampled, masked=masked)
