import engine.openmp  # noqa: F401  before any bench module loads llama.cpp (see engine/openmp.py)
