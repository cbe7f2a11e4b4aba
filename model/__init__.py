"""The trainer: LVM's LLaMA-style model, learning next-token prediction on built shards, and its use.

It reads shards only through uvd.format (never the build, never Beam), so training needs nothing
of the pipeline: shards -> packed rows -> LLaMA decoder -> safetensors checkpoints.

- ``llama``: the decoder, ``LlamaConfig`` and the LVM size table ``CONFIGS``.
- ``data``: ``ShardDataset``, the validated reader of a build's shards.
- ``loader``: streams of packed rows, the mixture order over ranks and workers, resumable state.
- ``train``: ``TrainConfig`` and the training loop; ``checkpoint``: saving and resuming.
- ``hf``: Hugging Face Llama export/import.
- using a model, as LVM's release evaluates it (docs/EVAL.md): ``generate`` + ``video`` (generation),
  ``evaluate`` + ``perplexity`` + ``records`` (perplexity), ``choice`` + ``reasoning`` + ``synthetic`` +
  ``raven`` (multiple choice), ``downstream`` + ``metrics`` (paired tasks); ``media``: files in, PNG/MP4 out.
"""

from uvd.model.checkpoint import load_model
from uvd.model.data import ShardDataset, ShardError
from uvd.model.llama import CONFIGS, NUM_CODES, NUM_SPECIAL, VOCAB_SIZE, Llama, LlamaConfig, get_config
from uvd.model.train import TrainConfig, TrainResult, learning_rate, train

__all__ = [
    "CONFIGS", "NUM_CODES", "NUM_SPECIAL", "VOCAB_SIZE", "Llama", "LlamaConfig", "ShardDataset", "ShardError",
    "TrainConfig", "TrainResult", "get_config", "learning_rate", "load_model", "train",
]
