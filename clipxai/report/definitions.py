"""The definitions a report embeds, so that its reader needs no other file to read its numbers."""

from __future__ import annotations

DEFINITIONS = [
    ("Snapshot", "The image the run had at one recorded step (every few steps), with its CLIP image embedding. "
                 "The states and their numbers come from the snapshots; the per-step dynamics from every "
                 "logged step."),
    ("Analysis space", "The snapshots' CLIP embeddings, each scaled to length 1, reduced with PCA to the "
                       "directions that rise above their noise (plus one). Every number is computed there; "
                       "the UMAP and t-SNE pictures are for looking only. On a PCA picture, \"PC1 (42% of "
                       "the variance)\" is the share of the analysis space's variance along that axis."),
    ("State", "A group of snapshots close together in the analysis space: k-means clusters, the number k "
              "chosen by the mean silhouette (k = 1 when no k reaches 0.25), then smoothed over time by a "
              "hidden Markov model. A cluster the run never stays in for 3 snapshots in a row is a "
              "transient and is merged into its nearest neighbor. A state's words are the vocabulary "
              "words whose CLIP text embeddings are closest (cosine) to the state's mean embedding; its "
              "concept is the closest of the concept probes given."),
    ("Switches, returns", "A switch is a pair of consecutive snapshots in different states. A return is a "
                          "visit to a state the run had already left: a drift passing through regions once "
                          "has none."),
    ("Switch rate", "Switches per 100 steps over the run. The 95% interval comes from 1000 circular block "
                    "bootstrap resamples (blocks at least one typical visit long, so neighboring snapshots "
                    "stay together)."),
    ("Dwell", "How long a visit to a state lasts, in steps. The first and last visits are cut off by the "
              "run's start and end (censored): medians use complete visits only, unless a state has none, "
              "then the value is a lower bound. The survival chart is the Kaplan-Meier estimate of "
              "P(dwell > t). Occupancy (\"time\") is the share of the run's steps spent in the state."),
    ("Early / middle / late rate, trend", "The switch rate in each third of the run; the trend is the "
                                          "Laplace test of whether switches crowd towards one end (p < 0.05)."),
    ("Silhouette", "How separated the states are, from -1 to 1 (mean silhouette of the state path in the "
                   "analysis space); below 0.25 there is no substantial structure."),
    ("Jump ratio", "How much bigger a switch is than ordinary motion inside the two states it joins "
                   "(median over switches, along the line joining their centres). About 1-5 for a smooth "
                   "drift cut into pieces; 10-50 for jumps between separated states."),
    ("Drift", "The distance between the mean of the first and last tenth of the snapshots, in units of the "
              "snapshot-to-snapshot noise, and the share of it travelled in the last third (a run that "
              "moved at least 5 noise units and travelled at most 20% of it in its last third has settled)."),
    ("Periodicity", "Whether the order of visits repeats: the best-matching lag against 199 surrogates that "
                    "shuffle the visits; periodic when p < 0.05 over at least 3 cycles."),
    ("Recurrence", "Snapshots i and j recur when they are closer than the typical step between consecutive "
                   "snapshots. RR: share of recurrent pairs; DET: share on diagonal lines (the run retraces a "
                   "path); LAM: share on vertical lines (it lingers). These describe; the verdict does not "
                   "use them."),
    ("Verdict on the states", "Keeps switching (metastable switching): at least 2 separated states "
                              "(silhouette >= 0.25), at least 2 returns and jump ratio >= 5. Oscillates "
                              "periodically: switching whose order repeats. Settled (converging): switching "
                              "that died out (none in the last third, a falling rate), or no switching and a "
                              "drift that stopped. One state, not settled / drifting, no recurring states "
                              "(single state): anything else."),
    ("Per-step dynamics", "Every logged step of the similarity to the prompt (metrics.jsonl). After its "
                          "initial climb, a sudden drop is a fall of more than 3 noise standard deviations "
                          "within 3 steps; the p-value asks whether falls are sharper than rises beyond the "
                          "series' own noise (999 surrogates that flip the direction of blocks of 10 "
                          "step-to-step changes). Cycling: p < 0.01, at least 5 drops, and drops still "
                          "coming in the last third. When drops come less than two snapshots apart, the "
                          "snapshots (and the states found in them) cannot show them."),
]
