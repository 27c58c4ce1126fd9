"""Planning for a contact centre: forecasts, staffing by simulation, rosters and sweeps.

Each module here is one planning step and may need the ``planning`` extra
(``pip install acd[planning]``: scipy, statsmodels, Dask); ``import acd`` and
the engine never import this package.
"""
