"""neat-python configurations for the evolution runner: the feed-forward baseline phenotype and the
CPPN of the HyperNEAT substrate (activations sin, gauss, sigmoid, abs, identity, tanh).

neat-python 2.0 wants every key explicit, so the whole file is written out here and saved next to a
run (``neat.cfg``) for reproducibility.
"""
from __future__ import annotations

from pathlib import Path

import neat

CPPN_ACTIVATIONS = ("sin", "gauss", "sigmoid", "abs", "identity", "tanh")

_TEMPLATE = """\
[NEAT]
fitness_criterion     = max
fitness_threshold     = 1e30
no_fitness_termination = True
pop_size              = {pop}
reset_on_extinction   = True

[DefaultGenome]
num_inputs            = {n_in}
num_outputs           = {n_out}
num_hidden            = 0
feed_forward          = True
initial_connection    = {initial_connection}
activation_default    = {act_default}
activation_mutate_rate = {act_mutate}
activation_options    = {act_options}
aggregation_default   = sum
aggregation_mutate_rate = 0.0
aggregation_options   = sum
bias_init_mean        = 0.0
bias_init_stdev       = 1.0
bias_init_type        = gaussian
bias_max_value        = 30.0
bias_min_value        = -30.0
bias_mutate_power     = {bias_mutate_power}
bias_mutate_rate      = {bias_mutate_rate}
bias_replace_rate     = {bias_replace_rate}
response_init_mean    = 1.0
response_init_stdev   = 0.0
response_init_type    = gaussian
response_max_value    = 30.0
response_min_value    = -30.0
response_mutate_power = 0.0
response_mutate_rate  = 0.0
response_replace_rate = 0.0
time_constant_init_mean = 1.0
time_constant_init_stdev = 0.0
time_constant_init_type = gaussian
time_constant_max_value = 30.0
time_constant_min_value = 0.01
time_constant_mutate_power = 0.0
time_constant_mutate_rate = 0.0
time_constant_replace_rate = 0.0
weight_init_mean      = 0.0
weight_init_stdev     = 1.0
weight_init_type      = gaussian
weight_max_value      = 30
weight_min_value      = -30
weight_mutate_power   = {weight_mutate_power}
weight_mutate_rate    = {weight_mutate_rate}
weight_replace_rate   = {weight_replace_rate}
enabled_default       = True
enabled_mutate_rate   = 0.01
enabled_rate_to_false_add = 0.0
enabled_rate_to_true_add = 0.0
compatibility_disjoint_coefficient = 1.0
compatibility_weight_coefficient   = 0.5
conn_add_prob         = {conn_add_prob}
conn_delete_prob      = {conn_delete_prob}
node_add_prob         = {node_add_prob}
node_delete_prob      = {node_delete_prob}
single_structural_mutation = false
structural_mutation_surer = default

[DefaultSpeciesSet]
compatibility_threshold = 3.0

[DefaultStagnation]
species_fitness_func = max
max_stagnation       = 20
species_elitism      = 2

[DefaultReproduction]
elitism            = {elitism}
survival_threshold = 0.2
min_species_size   = 2
"""


#: mutation settings: neat-python's usual ones for the direct-encoded baseline; smaller, rarer steps
#: for the CPPN (our choice, the paper gives none): in HyperNEAT one CPPN change moves every
#: expressed node and edge at once, and with the usual settings almost every offspring of a good
#: CPPN expressed a non-working system.
MUTATION: dict[bool | str, dict[str, float]] = {
    False: {"bias_mutate_power": 0.5, "bias_mutate_rate": 0.7, "bias_replace_rate": 0.1, "weight_mutate_power": 0.5,
            "weight_mutate_rate": 0.8, "weight_replace_rate": 0.1, "conn_add_prob": 0.5, "conn_delete_prob": 0.2,
            "node_add_prob": 0.2, "node_delete_prob": 0.1, "act_mutate": 0.0, "elitism": 2},
    True: {"bias_mutate_power": 0.3, "bias_mutate_rate": 0.2, "bias_replace_rate": 0.0, "weight_mutate_power": 0.3,
           "weight_mutate_rate": 0.2, "weight_replace_rate": 0.0, "conn_add_prob": 0.1, "conn_delete_prob": 0.05,
           "node_add_prob": 0.05, "node_delete_prob": 0.02, "act_mutate": 0.02, "elitism": 2},
}


#: named mutation settings (``mutation=``): "gentle" the CPPN default, "direct" the baseline's,
#: "structural" gentle weight and bias steps with more new connections, nodes and activation
#: changes (a CPPN then draws less regular patterns, e.g. FrozenLake's irregular policy table)
MUTATION["gentle"], MUTATION["direct"] = MUTATION[True], MUTATION[False]
MUTATION["structural"] = {**MUTATION[True], "conn_add_prob": 0.3, "conn_delete_prob": 0.1, "node_add_prob": 0.2,
                          "node_delete_prob": 0.05, "act_mutate": 0.1}


def neat_config_text(n_inputs: int, n_outputs: int, pop: int, *, cppn: bool, mutation: str = "") -> str:
    """The config file text: a tanh feed-forward net (baseline) or a CPPN (mixed activations);
    ``mutation`` "gentle" / "direct" overrides the phenotype's default mutation settings."""
    if n_inputs < 1 or n_outputs < 1 or pop < 2:
        raise ValueError(f"neat config: need >= 1 input and output and pop >= 2 (got {n_inputs}, {n_outputs}, {pop})")
    if mutation and mutation not in ("gentle", "direct", "structural"):
        raise ValueError(f"neat config: mutation must be 'gentle' or 'direct', got {mutation!r}")
    return _TEMPLATE.format(
        pop=pop, n_in=n_inputs, n_out=n_outputs,
        initial_connection="full_direct",
        act_default="random" if cppn else "tanh",
        act_options=" ".join(CPPN_ACTIVATIONS) if cppn else "tanh", **MUTATION[mutation or cppn])


def make_neat_config(path: Path, n_inputs: int, n_outputs: int, pop: int, *, cppn: bool,
                     mutation: str = "") -> neat.Config:
    """Write the config to ``path`` and load it with neat-python."""
    path.write_text(neat_config_text(n_inputs, n_outputs, pop, cppn=cppn, mutation=mutation))
    return neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                       neat.DefaultStagnation, str(path))
