//! Property and statistical tests of the paper's theorems and the samplers
