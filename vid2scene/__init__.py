"""The user-facing entry of vid2scene: the ``vid2scene`` command and the local all-in-one launcher."""
