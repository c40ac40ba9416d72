"""reidlib.papers: what each paper *ran* -- one recipe module per paper.

A recipe holds a paper's variants (the rows of its tables), presets (schedules, sizes), the map
from its table rows to variants, its registrations (model, criterion, schedule, hooks),
``train(**parameters) -> record`` (what the chapter's ``train.ipynb`` calls), the demo model its
method pages use, and the records frame its results page reads. A new paper adds a module here;
it does not edit the engine. Importing this package registers every paper's schedules.

* :mod:`~reidlib.papers.baseline` -- the strong baseline (Luo et al. 2019).
* :mod:`~reidlib.papers.esnet` -- ES-Net (Shen et al. 2021).
* :mod:`~reidlib.papers.feature_fusion`, :mod:`~reidlib.papers.reid_done_right` -- their schedules (chapters to come).
* :mod:`~reidlib.papers.hashing` -- the hashing paper (Jin et al. 2021): SSR, AAB, attributes;
  :mod:`~reidlib.papers.hashing_search` its search-time measurements.
* :mod:`~reidlib.papers.henet` -- HENet (Zhang et al.), its tables and the Efficiency Score.
* :mod:`~reidlib.papers.results` -- records -> tables and claims, shared by the results pages.
"""
from . import baseline, esnet, feature_fusion, hashing, henet, reid_done_right, results

__all__ = ["baseline", "esnet", "feature_fusion", "hashing", "henet", "reid_done_right", "results"]
