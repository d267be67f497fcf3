"""dsprites-vsa runtime: factor grid, renderer, vector-symbolic operations, models and app handlers."""
