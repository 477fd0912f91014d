package org.lora4j.train.text;

import java.util.Arrays;
import java.util.Objects;

/**
 * A tokenised training sample and which of its tokens the loss counts.
 *
 * <p>{@code lossMask[i]} is true when {@code ids[i]} is a target: the loss of the position that predicts
 * it (position {@code i - 1} after the usual shift by one) counts. Both arrays are copied in and out,
 * so a sample cannot change after it is built.
 *
 * @param ids      token ids
 * @param lossMask one flag per id, same length as {@code ids}
 */
public record EncodedChat(int[] ids, boolean[] lossMask) {

    public EncodedChat {
        Objects.requireNonNull(ids, "ids must not be null");
        Objects.requireNonNull(lossMask, "lossMask must not be null");
        if (ids.length != lossMask.length) {
            throw new IllegalArgumentException(
                    "ids has " + ids.length + " tokens but lossMask has " + lossMask.length + " flags");
        }
        ids = ids.clone();
        lossMask = lossMask.clone();
    }

    @Override
    public int[] ids() {
        return ids.clone();
    }

    @Override
    public boolean[] lossMask() {
        return lossMask.clone();
    }

    /** The number of tokens. */
    public int length() {
        return ids.length;
    }

    /** The number of tokens the loss counts: the denominator of a per-token mean loss. */
    public int targetCount() {
        int n = 0;
        for (boolean target : lossMask) {
            if (target) {
                n++;
            }
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof EncodedChat other
                && Arrays.equals(ids, other.ids) && Arrays.equals(lossMask, other.lossMask);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(ids) + Arrays.hashCode(lossMask);
    }

    @Override
    public String toString() {
        return "EncodedChat[ids=" + Arrays.toString(ids) + ", lossMask=" + Arrays.toString(lossMask) + "]";
    }
}
