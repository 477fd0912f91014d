package org.lora4j.train.model;

import org.lora4j.core.internal.NativeBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.ToIntFunction;

/**
 * Continues many prompts at once with a KV cache: each sequence has its own prompt length, stop
 * tokens, length limit and token picker, and the residual hooks of the model apply to its prompt
 * and to every generated token, as in {@link DecoderModel#generate}.
 *
 * <h2>How</h2>
 * Prompts of similar lengths are prefilled together, padded to the longest, each into its own
 * cache slot (the hooks see the padding rows with token mask false); then every step runs
 * the live sequences' newest tokens through the model as one pass of [live, d] rows, so each
 * linear layer makes one product for all of them, with RoPE at each sequence's own position and
 * attention over each sequence's own cached keys. A sequence that produces a stop token or reaches
 * its limit is done; done sequences leave the batch once they are half of it (until then their
 * rows repeat their last step, unread and masked for the hooks), because every change of the
 * batch's shape reallocates the buffers of every layer, which costs a few decode steps.
 *
 * <p>Requests with the same prompt (the same token ids) share one prefill: the first of them in
 * request order is prefilled, and each of the others starts from a copy of its cache slot's prompt
 * keys and values and of its last-position logits, then decodes on its own with its own limit,
 * stop tokens and picker. Many samples of one question (the sampled evaluation) so compute the
 * question's rows once, not once per sample. The hooks therefore see each distinct prompt of a
 * call once: hooks that transform the stream (steering, ablation) give the same continuations as
 * without sharing, since a copied prefill is the stream they made; hooks that count or pool rows
 * ({@link ResidualHook.Capture}) count a repeated prompt once, and a caller that wants every
 * request's prompt counted passes them in separate calls.
 *
 * <p>Each sequence's logits are computed as they would be alone, up to
 * float rounding (BLAS blocks a product by its row count, so a row can round differently in
 * another batch: 6e-7 of the largest logit measured), so a greedy or seeded picker gives the same tokens whatever its
 * batch neighbours, but for a near-tie at that rounding (GeneratorTest).
 *
 * <p>The pickers are called one sequence after another, in request order, on the calling thread;
 * give each sequence its own picker when they keep state (a sampler's random stream). Like the
 * model, not thread-safe, and it voids a pending {@link DecoderModel#backward}.
 */
public final class Generator {
    private final DecoderModel model;

    public Generator(DecoderModel model) {
        this.model = Objects.requireNonNull(model, "model");
    }

    /**
     * One sequence to continue.
     *
     * @param prompt        token ids, at least one
     * @param maxNewTokens  the length limit on the continuation
     * @param stopTokenIds  generation ends after one of these is produced (it is included in the
     *                      result); null for none
     * @param next          picks the next token from the last position's logits, e.g.
     *                      {@link #greedy()} or a sampler's {@code next}
     */
    public record Request(int[] prompt, int maxNewTokens, int[] stopTokenIds, ToIntFunction<float[]> next) {
        public Request {
            prompt = Objects.requireNonNull(prompt, "prompt").clone();
            Objects.requireNonNull(next, "next");
            if (maxNewTokens < 0) {
                throw new IllegalArgumentException("maxNewTokens must be >= 0, got " + maxNewTokens);
            }
            stopTokenIds = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
        }
    }

    /** Picks the highest logit (the first on ties). */
    public static ToIntFunction<float[]> greedy() {
        return logits -> {
            int best = 0;
            for (int i = 1; i < logits.length; i++) {
                if (logits[i] > logits[best]) {
                    best = i;
                }
            }
            return best;
        };
    }

    /** Continues every request; result i holds request i's generated tokens, without its prompt. */
    public List<int[]> generate(List<Request> requests) {
        Objects.requireNonNull(requests, "requests");
        int count = requests.size();
        Seq[] seqs = new Seq[count];
        int cap = 1;
        for (int i = 0; i < count; i++) {
            seqs[i] = new Seq(i, check(i, Objects.requireNonNull(requests.get(i), "request " + i)));
            cap = Math.max(cap, seqs[i].tokens.length);
        }
        if (count == 0) {
            return List.of();
        }
        model.rope().ensure(cap);
        SelfAttention.KvCache[] caches = model.newCaches(count, cap);
        float[][] logits = new float[count][];
        // The first request with a given prompt leads: only leaders are prefilled, the others copy.
        Map<Prompt, Seq> leaders = new HashMap<>();
        List<Seq> followers = new ArrayList<>();
        for (Seq s : seqs) {
            Seq lead = leaders.putIfAbsent(new Prompt(s.request.prompt()), s);
            if (lead != null) {
                s.leader = lead;
                followers.add(s);
            }
        }
        for (List<Seq> group : prefillGroups(leaders.values())) {
            int p = group.get(0).len;  // the longest: the others are padded to it
            int[] tokens = new int[group.size() * p];
            boolean[] real = new boolean[group.size() * p];
            int[] slots = new int[group.size()];
            int[] last = new int[group.size()];
            for (int bi = 0; bi < group.size(); bi++) {
                Seq s = group.get(bi);
                System.arraycopy(s.tokens, 0, tokens, bi * p, s.len);
                Arrays.fill(tokens, bi * p + s.len, (bi + 1) * p, s.tokens[s.len - 1]);
                Arrays.fill(real, bi * p, bi * p + s.len, true);
                slots[bi] = s.index;
                last[bi] = bi * p + s.len - 1;
            }
            float[][] l = pass(tokens, real, group.size(), p, caches, slots, new int[group.size()], last);
            for (int bi = 0; bi < group.size(); bi++) {
                logits[slots[bi]] = l[bi];
            }
        }
        for (Seq s : followers) {
            copyPrompt(caches, s.leader.index, s.index, s.len, cap);
            logits[s.index] = logits[s.leader.index].clone();   // a picker may write into its array
        }
        List<Seq> rows = new ArrayList<>();  // the decode pass's rows, finished sequences among them
        for (Seq s : seqs) {
            if (s.request.maxNewTokens() > 0) {
                rows.add(s);
            }
        }
        int vocab = model.config().vocabSize();
        while (true) {
            int alive = 0;
            for (Seq s : rows) {
                if (!s.done) {
                    s.done = !s.take(s.request.next().applyAsInt(logits[s.index]), vocab);
                }
                alive += s.done ? 0 : 1;
            }
            if (alive == 0) {
                break;
            }
            if (2 * alive <= rows.size()) {
                rows.removeIf(s -> s.done);
            }
            int m = rows.size();
            int[] tokens = new int[m];
            int[] slots = new int[m];
            int[] past = new int[m];
            boolean[] real = alive == m ? null : new boolean[m];
            for (int bi = 0; bi < m; bi++) {
                Seq s = rows.get(bi);
                tokens[bi] = s.tokens[s.len - 1];   // a finished one repeats its last step, unread
                slots[bi] = s.index;
                past[bi] = s.len - 1;
                if (real != null) {
                    real[bi] = !s.done;
                }
            }
            float[][] l = pass(tokens, real, m, 1, caches, slots, past, identity(m));
            for (int bi = 0; bi < m; bi++) {
                logits[slots[bi]] = l[bi];
            }
        }
        List<int[]> out = new ArrayList<>(count);
        for (Seq s : seqs) {
            out.add(Arrays.copyOfRange(s.tokens, s.request.prompt().length, s.len));
        }
        return out;
    }

    /**
     * One pass of batch sequences of seq new tokens through the cache; the logits of the given
     * rows. real (null: all) marks the rows that are not padding, for the hooks.
     */
    private float[][] pass(int[] tokens, boolean[] real, int batch, int seq, SelfAttention.KvCache[] caches,
                           int[] slots, int[] past, int[] rows) {
        Workspace w = model.workspace(batch, seq);
        model.runBlocks(w, tokens, real, caches, slots, past);
        return model.head().logitsOf(w, rows);
    }

    /**
     * The prefill passes: prompts longest first, each pass taking the prompts at least half as
     * long as its first, the shorter ones padded at the end. Padding is sound: causal attention
     * keeps it out of the real positions, and its keys sit in the cache after the prompt, where
     * each decode step overwrites the next one before attention reads it. It beats a pass per
     * length: every change of pass shape reallocates the buffers of every layer, and a pass of
     * few rows leaves the products small.
     */
    private static List<List<Seq>> prefillGroups(Collection<Seq> seqs) {
        List<Seq> order = new ArrayList<>(seqs);
        order.sort((a, b) -> a.len != b.len ? Integer.compare(b.len, a.len)
                : Integer.compare(a.index, b.index));  // request order within a length
        List<List<Seq>> groups = new ArrayList<>();
        for (Seq s : order) {
            List<Seq> g = groups.isEmpty() ? null : groups.get(groups.size() - 1);
            if (g == null || 2 * s.len < g.get(0).len) {
                g = new ArrayList<>();
                groups.add(g);
            }
            g.add(s);
        }
        return groups;
    }

    /**
     * Copies the first {@code positions} positions of every layer's keys and values from slot
     * {@code from} to slot {@code to}: the prompt's entries; the positions after it are written by
     * the decode steps before attention reads them. Per feature, as a slot is [cap, width] column-major.
     */
    private void copyPrompt(SelfAttention.KvCache[] caches, int from, int to, int positions, int cap) {
        int width = model.config().kvDim();
        for (SelfAttention.KvCache c : caches) {
            long src = c.bases(new int[]{from})[0];
            long dst = c.bases(new int[]{to})[0];
            NativeBuffer keys = NativeBuffer.of(c.keys());
            NativeBuffer values = NativeBuffer.of(c.values());
            for (int f = 0; f < width; f++) {
                keys.copyTo(src + (long) f * cap, keys, dst + (long) f * cap, positions);
                values.copyTo(src + (long) f * cap, values, dst + (long) f * cap, positions);
            }
        }
    }

    /** A prompt's token ids as a map key: equal when the ids are. */
    private record Prompt(int[] ids) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Prompt p && Arrays.equals(ids, p.ids);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(ids);
        }
    }

    private static int[] identity(int m) {
        int[] r = new int[m];
        for (int i = 0; i < m; i++) {
            r[i] = i;
        }
        return r;
    }

    /** The request, checked against the model; messages name the sequence. */
    private Request check(int i, Request r) {
        if (r.prompt().length == 0) {
            throw new IllegalArgumentException("sequence " + i + ": prompt must hold at least one token");
        }
        String bad = model.badId(r.prompt());
        if (bad != null) {
            throw new IllegalArgumentException("sequence " + i + ": prompt " + bad);
        }
        int max = model.config().maxPositionEmbeddings();
        if ((long) r.prompt().length + r.maxNewTokens() > max) {
            throw new IllegalArgumentException("sequence " + i + ": prompt (" + r.prompt().length + ") + maxNewTokens ("
                    + r.maxNewTokens() + ") exceeds max_position_embeddings " + max);
        }
        return r;
    }

    /** A sequence being continued: its prompt and tokens so far. */
    private static final class Seq {
        final int index;
        final Request request;
        final int[] tokens;     // prompt, then the generated tokens; len of them valid
        int len;
        boolean done;
        Seq leader;             // the request whose prefill this one copies; null when prefilled itself

        Seq(int index, Request request) {
            this.index = index;
            this.request = request;
            this.tokens = Arrays.copyOf(request.prompt(), request.prompt().length + request.maxNewTokens());
            this.len = request.prompt().length;
        }

        /** Appends the picked token; false when the sequence is done. */
        boolean take(int t, int vocab) {
            if (t < 0 || t >= vocab) {
                throw new IllegalStateException("sequence " + index + ": token picker returned " + t + ", outside [0, "
                        + vocab + ")");
            }
            tokens[len++] = t;
            return !contains(request.stopTokenIds(), t) && len < tokens.length;
        }
    }

    private static boolean contains(int[] a, int x) {
        for (int v : a) {
            if (v == x) {
                return true;
            }
        }
        return false;
    }

    /**
     * The reference the cache is tested against: continues one request by running the whole
     * sequence through {@link DecoderModel#forward} at every step.
     */
    static int[] withoutCache(DecoderModel model, Request r) {
        Seq s = new Seq(0, new Generator(model).check(0, r));
        int vocab = model.config().vocabSize();
        boolean more;
        do {  // one pass even for no new tokens: the hooks see the prompt, as with the cache
            INDArray all = model.forward(Arrays.copyOf(s.tokens, s.len), null, 1, s.len);
            double[] row = new double[s.len * vocab];
            NativeBuffer.read(all, row, row.length);
            float[] logits = new float[vocab];
            for (int v = 0; v < vocab; v++) {
                logits[v] = (float) row[v * s.len + s.len - 1];
            }
            more = r.maxNewTokens() > 0 && s.take(r.next().applyAsInt(logits), vocab);
        } while (more);
        return Arrays.copyOfRange(s.tokens, r.prompt().length, s.len);
    }
}
