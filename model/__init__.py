"""Train LVM-style models on the visual sentences the pipeline builds.

Why it lives here: the shard format, the loader that reads it and the model that consumes
it change together; keeping them in one package lets the walking skeleton go end to end
(shards -> packed rows -> LLaMA decoder -> safetensors checkpoint) and be tested as one.

- ``llama``: the decoder, ``LlamaConfig`` and the LVM size table ``CONFIGS``.
- ``data``: ``ShardDataset`` (exact split over ranks and DataLoader workers) and
  ``PackedTokens`` (LVM's packing into fixed-length rows).
- ``train``: ``TrainConfig``, ``train`` and checkpoints.
"""

from uvd.model.data import PackedTokens, ShardDataset, ShardError
from uvd.model.llama import CONFIGS, NUM_CODES, NUM_SPECIAL, VOCAB_SIZE, Llama, LlamaConfig, get_config
from uvd.model.train import (CheckpointMeta, TrainConfig, TrainResult, learning_rate, load_checkpoint,
                             save_checkpoint, train)

__all__ = [
    "CONFIGS", "NUM_CODES", "NUM_SPECIAL", "VOCAB_SIZE", "CheckpointMeta", "Llama", "LlamaConfig",
    "PackedTokens", "ShardDataset", "ShardError", "TrainConfig", "TrainResult", "get_config",
    "learning_rate", "load_checkpoint", "save_checkpoint", "train",
]
