"""The report wing: markdown pages and PNG figures, each a pure function of run records.

- :mod:`harness.report.tables`: the table pieces every page shares;
- :mod:`harness.report.domain`: one page per domain;
- :mod:`harness.report.ablation`: learning rate x batch size grids of a sweep;
- :mod:`harness.report.index`: the headline page, ``leaderboards/README.md``;
- :mod:`harness.report.plots`: the figures (matplotlib, Agg, no metadata: same bytes every time).

:mod:`harness.leaderboard` writes them to ``leaderboards/``. The wing reads records, statistics and
the setting declarations only (:mod:`harness.results`, :mod:`harness.identity`,
:mod:`harness.environment`, :mod:`harness.stats`, :mod:`harness.config`,
all standard-library code); it never imports training or data code, so rendering needs neither a
model nor a dataset, nor torch.
"""
