"""Train LVM-style models on the visual sentences the pipeline builds.

Why it lives here: the shard format, the loader that reads it and the model that consumes
it change together; keeping them in one package lets the walking skeleton go end to end
(shards -> packed rows -> LLaMA decoder -> safetensors checkpoint) and be tested as one.

- ``llama``: the decoder, ``LlamaConfig`` and the LVM size table ``CONFIGS``.
- ``data``: ``ShardDataset``, the validated reader of a build's shards.
- ``loader``: streams of packed rows, the mixture order over ranks and workers, resumable state.
- ``train``: ``TrainConfig`` and the training loop; ``checkpoint``: saving and resuming.
- ``hf``: Hugging Face Llama export/import; ``evaluate``, ``generate``, ``reasoning``: using a model.
"""

from uvd.model.checkpoint import load_model
from uvd.model.data import ShardDataset, ShardError
from uvd.model.llama import CONFIGS, NUM_CODES, NUM_SPECIAL, VOCAB_SIZE, Llama, LlamaConfig, get_config
from uvd.model.train import TrainConfig, TrainResult, learning_rate, train

__all__ = [
    "CONFIGS", "NUM_CODES", "NUM_SPECIAL", "VOCAB_SIZE", "Llama", "LlamaConfig", "ShardDataset", "ShardError",
    "TrainConfig", "TrainResult", "get_config", "learning_rate", "load_model", "train",
]
