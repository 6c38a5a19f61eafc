"""CLIP's own words: the vocabulary and its embeddings, the labels of states, CLIP's opinion by text ascent."""
