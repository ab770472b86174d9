"""The SceneModel family: RUST and the posed baselines SRT / UpSRT (one implementation)."""
