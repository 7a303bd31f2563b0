"""Figures drawn from records: Figure 3, Figure 4 (and its word shading), the costs behind the
Pareto plots and their fronts, learning-rate curves."""
