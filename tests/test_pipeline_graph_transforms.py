"""Beam TestPipeline over the composite transforms, on the DirectRunner's FnApiRunner."""

import apache_beam as beam
import numpy as np
import torch
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline  # (not a pytest class)
from apache_beam.testing.util import assert_that, equal_to

from uvd.format.sample import sentence_key
from uvd.media import images as decode
from uvd.pipeline.graph import transforms
from uvd.pipeline.graph.inference import VQGANModelHandler
from uvd.pipeline.graph.writing import ItemAccounting, TokenShards
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.tokenizer import load_tokenizer
from uvd.tokenizer.frames import TaggedFrame, pad_batch

CONFIG = BuildConfig(tokenizer="random:tiny", batch_size=4)


def sources(dirs):
    return [SourceConfig(name="images", spec="images", root=str(dirs["images"])),
            SourceConfig(name="videos", spec="videos", root=str(dirs["videos"]))]


def front(p, srcs, config=CONFIG):
    """The build up to decoded frames; rejects of every stage, the shard-attributed ones unwrapped."""
    items, list_rejects = p | "SourceItems" >> transforms.SourceItems(srcs, config)
    probed, probe_rejects = items | "ProbedItems" >> transforms.ProbedItems(srcs, config)
    unique, duplicate_rejects = probed | "DedupedItems" >> transforms.DedupedItems()
    plans, plan_rejects = unique | "SentencePlans" >> transforms.SentencePlans(srcs, config)
    num_shards = p | "ShardCount" >> beam.Create([1])
    frames, decode_rejects = (unique, plans, num_shards) | "DecodedFrames" >> transforms.DecodedFrames(srcs, config)
    late = decode_rejects | "Unwrap" >> beam.Map(lambda shard_reject: shard_reject[1])
    rejects = (list_rejects, probe_rejects, duplicate_rejects, plan_rejects, late) | "Rejects" >> beam.Flatten()
    return items, plans, frames, rejects, num_shards


def test_items_plans_frames_and_rejects(bad_media):
    with BeamTestPipeline(runner=FnApiRunner()) as p:
        items, plans, frames, rejects, _ = front(p, sources(bad_media))
        # hidden files and non-media (README.txt) are not items; the rest are, broken ones included
        assert_that(items | beam.Map(lambda it: (it.source, it.key)), equal_to([
            ("images", k) for k in ("astronaut.png", "broken.png", "chelsea.png", "coffee.png",
                                    "sub dir é/rocket.v2.jpg")] + [("videos", k) for k in
                                                                   ("broken.mp4", "pan.mp4", "short.mp4")]),
                    label="Items")
        shapes = frames | beam.Map(lambda kv: (kv[1].shape, str(kv[1].dtype)))
        assert_that(shapes | "Distinct" >> beam.Distinct(), equal_to([((256, 256, 3), "uint8")]), label="Shapes")
        # 5 photos -> 5 one-image plans (broken.png fails later, at decoding); pan.mp4 (40 frames) -> 1 clip
        assert_that(plans | beam.Map(lambda plan: plan.num_images), equal_to([1] * 5 + [16]), label="Plans")
        assert_that(frames | "CountFrames" >> beam.combiners.Count.Globally(), equal_to([4 + 16]), label="Frames")
        assert_that(rejects | beam.Map(lambda r: (r.item_key, r.stage, r.reason)),
                    equal_to([("broken.png", "decode", "unreadable_image"),
                              ("broken.mp4", "probe", "unreadable_video"),
                              ("short.mp4", "plan", "video_too_short")]), label="Rejects")


def test_tokenized_sentences_shards_and_accounting(bad_media, tmp_path):
    with BeamTestPipeline(runner=FnApiRunner()) as p:
        items, plans, frames, rejects, num_shards = front(p, sources(bad_media))
        tokens = frames | transforms.TokenizedFrames(CONFIG, device="cpu")
        assert_that(tokens | beam.Map(lambda kv: (kv[1].shape, str(kv[1].dtype))) | beam.Distinct(),
                    equal_to([((256,), "uint16")]), label="TokenShapes")
        sentences, assemble_rejects = (plans, tokens, num_shards) | transforms.VisualSentences()
        assert_that(sentences | beam.Map(lambda s: (s.meta.layout, s.tokens.shape)),
                    equal_to([("single_image", (1, 256))] * 4 + [("video", (16, 256))]), label="Sentences")
        # broken.png was planned but never decoded: rejected once (at decode), not again at assembly
        assert_that(assemble_rejects, equal_to([]), label="AssembleRejects")
        nothing = p | "Nothing" >> beam.Create([])
        states = (sentences, nothing, num_shards, nothing) | TokenShards(str(tmp_path / "out"), CONFIG)
        assert_that(states | beam.Map(lambda st: st.info.samples) | beam.combiners.Count.Globally(),
                    equal_to([1]), label="OneShard")  # 5 planned sentences, 256 a shard
        listed = items | "Keys" >> beam.Map(lambda it: (it.source, it.key))
        outcomes = (listed, states, rejects, nothing) | ItemAccounting()
        assert_that(outcomes, equal_to([(("images", "written"), 4), (("images", "rejected"), 1),
                                        (("videos", "written"), 1), (("videos", "rejected"), 2)]),
                    label="Accounting")


def test_tokens_match_direct_encode(media_dirs):
    """RunInference batching must not change a frame's codes."""


    path = media_dirs["images"] / "chelsea.png"
    frame = decode.resize_still(decode.decode_image(path.read_bytes(), max_pixels=10**8, name="c"), 256)
    model = load_tokenizer("random:tiny")
    expected = model.encode(torch.from_numpy(frame[None]).permute(0, 3, 1, 2).float() / 255)[0].numpy()
    with BeamTestPipeline(runner=FnApiRunner()) as p:
        _, _, frames, _, _ = front(p, sources(media_dirs))
        tokens = frames | transforms.TokenizedFrames(CONFIG, device="cpu")
        chelsea = tokens | beam.Filter(lambda kv, k: kv[0][0] == k, k=sentence_key("images", "chelsea.png", 0))
        assert_that(chelsea | beam.Map(lambda kv: kv[1].astype(np.int64).tolist()), equal_to([expected.tolist()]))


def test_handler_codes_do_not_depend_on_batching(media_dirs):
    """A frame's codes are the same alone, in a partial batch, or among other frames."""

    frames = [decode.resize_still(decode.decode_image(p.read_bytes(), max_pixels=10**8, name=p.name), 256)
              for p in sorted(media_dirs["images"].glob("*.png"))]
    handler = VQGANModelHandler("random:small", batch_size=4, device="cpu")
    model = handler.load_model()
    alone = [handler.run_inference([f], model)[0] for f in frames]
    together = handler.run_inference(frames, model)
    reversed_ = handler.run_inference(frames[::-1], model)[::-1]
    for a, b, c in zip(alone, together, reversed_):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert pad_batch(np.stack(frames[:1]), 4).shape[0] == 4


def test_handler_encodes_tagged_frames_in_the_builds_precision(media_dirs):
    """The gray view arrives as a TaggedFrame (uint8 + 'gray') and is encoded from LVM's float luma;
    the handler's model runs in the build's tokenizer precision (fp32 unless bf16 is asked for)."""
    frame = decode.resize_still(decode.decode_image((media_dirs["images"] / "coffee.png").read_bytes(),
                                                    max_pixels=10**8, name="coffee"), 256)
    handler = VQGANModelHandler("random:tiny", batch_size=2, device="cpu")
    model = handler.load_model()
    assert model.precision == "fp32"
    tagged = TaggedFrame(frame, "gray")
    codes = handler.run_inference([frame, tagged], model)
    assert handler.get_num_bytes([frame, tagged]) == 2 * frame.nbytes
    floats = torch.from_numpy(tagged.model_input()).permute(2, 0, 1)[None]
    expected = model.encode(torch.cat([floats, torch.zeros_like(floats)]))[0].numpy()  # padded to the batch shape
    np.testing.assert_array_equal(codes[1].astype(np.int64), expected)
    assert VQGANModelHandler("random:tiny", batch_size=2, device="cpu", precision="bf16").load_model().precision == "bf16"
