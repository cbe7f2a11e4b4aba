"""The small records of a build and its configuration: ``Item`` (what a reader lists), ``Picture``
(what it draws), ``SentencePlan`` (a sentence before tokenization) and ``BuildConfig`` /
``SourceConfig`` (everything that decides the output bytes). Pixels never travel in them."""
