"""The VQGAN image tokenizer: 256x256 images <-> 256 token ids from an 8192-entry codebook.

LVM (Bai et al. 2023) trains its language model on the token ids of taming-transformers'
VQGAN (as reimplemented by open-muse), so this package rebuilds that exact architecture, with
taming's parameter names so released weights load without renaming, and adds what the
pipeline needs around it: named sizes, a pickle-free checkpoint format, deterministic random
weights for untrained runs, and a sha256 that records which weights made a dataset's tokens.
"""

from .checkpoint import TokenizerInfo, load_tokenizer, save_tokenizer
from .config import CONFIGS, VQGANConfig, get_config
from .formats import CheckpointError
from .vqgan import VQGAN, VQGANOutput

__all__ = ["CONFIGS", "CheckpointError", "VQGAN", "VQGANConfig", "VQGANOutput", "TokenizerInfo", "get_config", "load_tokenizer",
           "save_tokenizer"]
