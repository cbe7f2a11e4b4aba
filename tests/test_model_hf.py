"""Hugging Face interop: the export loads in transformers with the same logits, imports back, and the
LVM size table has exactly the parameters of a LlamaForCausalLM of the same config."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from click.testing import CliRunner

from uvd.cli import main
from uvd.model.hf import config_from_hf, export_hf, hf_config, import_hf
from uvd.model.llama import Llama, get_config


@pytest.fixture(scope="module")
def debug_model():
    torch.manual_seed(0)
    return Llama(get_config("debug")).eval()


def test_export_loads_in_transformers_with_the_same_logits(debug_model, tmp_path):
    export_hf(debug_model, tmp_path / "hf")
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "hf", torch_dtype=torch.float32).eval()
    ids = torch.randint(0, 8192, (2, 512), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = debug_model(ids)[0], hf(ids).logits
    assert (ours - theirs).abs().max().item() < 1e-4
    assert ours.abs().max().item() > 1e-3  # not a trivially zero model


def test_import_round_trip_and_from_transformers_save(debug_model, tmp_path):
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**{
        k: v for k, v in hf_config(debug_model.config).items() if k not in ("architectures", "rope_parameters")}))
    hf.eval().save_pretrained(tmp_path / "saved")  # transformers' own writer
    imported = import_hf(tmp_path / "saved")
    ids = torch.randint(0, 8192, (1, 300), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (imported(ids)[0] - hf(ids).logits).abs().max().item() < 1e-4
    export_hf(imported, tmp_path / "again")
    again = import_hf(tmp_path / "again")
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), imported.state_dict().values()))


@pytest.mark.parametrize("name", ["vqlm_100m", "vqlm_300m", "vqlm_1b"])
def test_sizes_match_llama_for_causal_lm_to_the_parameter(name):
    cfg = get_config(name)
    hf_cfg = transformers.LlamaConfig(**{k: v for k, v in hf_config(cfg).items()
                                         if k not in ("architectures", "rope_parameters")})
    with torch.device("meta"):
        theirs = sum(p.numel() for p in transformers.LlamaForCausalLM(hf_cfg).parameters())
        ours = Llama(cfg).num_params()
    assert ours == theirs == cfg.num_params()


def test_uvd_model_sizes_prints_the_table():
    result = CliRunner().invoke(main, ["model", "sizes"])
    assert result.exit_code == 0, result.output
    for name in ["vqlm_100m", "vqlm_300m", "vqlm_1b", "vqlm_30b", "debug"]:
        assert name in result.output
    assert f"{get_config('vqlm_1b').num_params():,}" in result.output


def test_unsupported_variants_are_refused(debug_model):
    base = hf_config(debug_model.config)
    for change, message in [({"num_key_value_heads": 2}, "grouped-query"), ({"tie_word_embeddings": True}, "tied"),
                            ({"rope_scaling": {"rope_type": "linear", "factor": 2.0}}, "rope scaling")]:
        with pytest.raises(ValueError, match=message):
            config_from_hf({**base, **change, "rope_parameters": change.get("rope_scaling", {})})
    assert config_from_hf(json.loads(json.dumps(base))) == debug_model.config
