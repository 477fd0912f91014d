package org.lora4j.train.text;

import java.util.Arrays;
import java.util.Objects;

/**
 * The ids of a text and where each token came from in it, as Hugging Face's {@code return_offsets_mapping}
 * gives them but in Java's units: {@code starts[i]} and {@code ends[i]} are UTF-16 char indices into the
 * encoded {@code String} (end exclusive), so {@code text.substring(starts[i], ends[i])} is the text of
 * token {@code i}. A token that covers part of a character (one byte of a multibyte UTF-8 character, in a
 * byte-level tokenizer) has the whole character's span, so a span boundary never falls inside a character.
 *
 * <p>{@link ChatTemplate#encode} uses the offsets to find the tokens of each assistant turn in the
 * rendered conversation. Arrays are copied in and out.
 *
 * @param ids    token ids
 * @param starts where each token starts in the text, non-decreasing
 * @param ends   where each token ends in the text (exclusive), at or after its start
 */
public record Encoding(int[] ids, int[] starts, int[] ends) {

    public Encoding {
        Objects.requireNonNull(ids, "ids must not be null");
        Objects.requireNonNull(starts, "starts must not be null");
        Objects.requireNonNull(ends, "ends must not be null");
        if (starts.length != ids.length || ends.length != ids.length) {
            throw new IllegalArgumentException("ids has " + ids.length + " tokens but starts has " + starts.length
                    + " and ends " + ends.length + " offsets");
        }
        for (int i = 0; i < ids.length; i++) {
            if (starts[i] < 0 || ends[i] < starts[i] || (i > 0 && starts[i] < starts[i - 1])) {
                throw new IllegalArgumentException("token " + i + " has span [" + starts[i] + ", " + ends[i]
                        + ") after [" + (i > 0 ? starts[i - 1] + ", " + ends[i - 1] : "-") + "): spans must start"
                        + " in order and end at or after their start");
            }
        }
        ids = ids.clone();
        starts = starts.clone();
        ends = ends.clone();
    }

    @Override
    public int[] ids() {
        return ids.clone();
    }

    @Override
    public int[] starts() {
        return starts.clone();
    }

    @Override
    public int[] ends() {
        return ends.clone();
    }

    /** The number of tokens. */
    public int length() {
        return ids.length;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Encoding other && Arrays.equals(ids, other.ids)
                && Arrays.equals(starts, other.starts) && Arrays.equals(ends, other.ends);
    }

    @Override
    public int hashCode() {
        return Objects.hash(Arrays.hashCode(ids), Arrays.hashCode(starts), Arrays.hashCode(ends));
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("Encoding[");
        for (int i = 0; i < ids.length; i++) {
            s.append(i == 0 ? "" : ", ").append(ids[i]).append('@').append(starts[i]).append("..").append(ends[i]);
        }
        return s.append(']').toString();
    }
}
