"""The plugin kinds and what crosses the plugin boundary.

Owns the base classes of sources, datasets, extractors and launchers (``base``), the
networks a source hands over as named blocks (``networks``), the one lazy registry fed by
entry points (``registry``), the ``name:key=value`` spec syntax (``spec``), the search
distributions a parameter declares (``search``), the image format every plugin hands over
(``images``) and the contract checks run before training (``contracts``). It may import
:mod:`gtbench.files` and :mod:`gtbench.errors`; nothing here trains, measures or plans.
"""
