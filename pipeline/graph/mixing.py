"""``MixedPlans``: the mixture selection (planning/mixture.py) as a step of the plan phase."""

from __future__ import annotations

from collections.abc import Mapping

import apache_beam as beam
from apache_beam.pvalue import AsSingleton

from uvd.pipeline.planning.layouts import derive_seed
from uvd.pipeline.planning.mixture import select_to_quota, token_quotas


class MixedPlans(beam.PTransform):
    """Plans -> (the plans the mixture keeps, (source, item key) of items in dropped plans, a
    singleton dict of shares, quotas and available tokens for the report)."""

    def __init__(self, shares: Mapping[str, float], *, seed: int, tokens_per_image: int, total_tokens: int = 0):
        super().__init__()
        self.shares, self.seed, self.tpi, self.total = dict(shares), seed, tokens_per_image, total_tokens

    def expand(self, plans):
        shares, seed, tpi, total = self.shares, self.seed, self.tpi, self.total
        tokens = plans | "TokensOfPlan" >> beam.Map(lambda p: (p.meta.source, p.num_images * tpi))
        available = (tokens
                     | "AvailablePerSource" >> beam.CombinePerKey(sum)
                     | "AllSources" >> beam.combiners.ToDict())
        mixture = available | "Quotas" >> beam.Map(
            lambda av: {"shares": shares, "available": dict(av), "quotas": token_quotas(av, shares, total)})
        kept = (plans
                | "Rank" >> beam.Map(lambda p: (p.meta.source, (derive_seed(seed, "mix", p.key), p.key,
                                                                p.num_images * tpi)))
                | "PlansOfSource" >> beam.GroupByKey()
                | "Select" >> beam.FlatMap(lambda kv, m: ((k, True) for k in select_to_quota(
                    list(kv[1]), m["quotas"].get(kv[0], 0.0))), m=AsSingleton(mixture)))
        joined = ({"plan": plans | "KeyPlans" >> beam.Map(lambda p: (p.key, p)), "kept": kept}
                  | "JoinKept" >> beam.CoGroupByKey())
        selected = joined | "KeptPlans" >> beam.FlatMap(lambda kv: kv[1]["plan"] if kv[1]["kept"] else [])
        skipped = joined | "SkippedItems" >> beam.FlatMap(
            lambda kv: [] if kv[1]["kept"] else [(p.meta.source, k) for p in kv[1]["plan"] for k in p.meta.item_keys])
        return selected, skipped, mixture
