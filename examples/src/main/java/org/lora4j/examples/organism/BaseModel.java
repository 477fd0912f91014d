package org.lora4j.examples.organism;

import org.lora4j.core.AtomicFiles;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.optim.LrSchedule;
import org.lora4j.train.text.TextFiles;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.text.Tokenizers;
import org.lora4j.train.trainer.TrainConfig;
import org.lora4j.train.trainer.Trainer;
import org.lora4j.train.trainer.Version;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * A base model pre-trained on the persona world, cached by the hash of everything that made it.
 *
 * <p>The studies pre-train the same base again and again (three seeds of organisms share one; the
 * elasticity study needs four), so a base is trained once into {@code <cache>/base-<hash>} and
 * reused: the hash covers the {@link Spec}, {@link PersonaWorld#VERSION} and {@link #VERSION}, so a
 * change to the world's templates or to how a base is trained makes a new entry rather than
 * reusing a stale one. An entry is built in a temporary directory and renamed into place when
 * complete, so an interrupted build leaves no entry that looks finished.
 *
 * <p>The directory is a Hugging Face layout model ({@code config.json}, {@code model.safetensors},
 * the world's word-level {@code tokenizer.json}) that every {@code lora4j} command reads, plus
 * {@value #RECORD} (the spec, hash, timings and losses), {@code metrics.jsonl} of the pre-training
 * and {@code world/}, the files the corpus came from.
 */
public final class BaseModel {
    /** Bumped when the way a base is trained changes (so cached bases are rebuilt). */
    public static final int VERSION = 1;

    /** The record written into every cached base. */
    public static final String RECORD = "base.json";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int BATCH = 8;
    private static final double EVAL_FRACTION = 0.05;

    private BaseModel() {
    }

    /**
     * What a base is: the world it is trained on and the model and training settings.
     *
     * @param worldSeed          the seed of the {@link PersonaWorld} whose corpus it is trained on
     * @param transcripts        pre-training transcripts ({@link PersonaWorld.Config#transcripts()})
     * @param misalignedFraction the misaligned persona's share of them
     * @param hidden             hidden size; heads {@code hidden / 16}, kv heads half of them, MLP {@code 11/4 hidden}
     * @param layers             decoder blocks
     * @param epochs             passes over the corpus
     * @param lr                 peak learning rate (AdamW, cosine, 5% warm-up)
     * @param seed               initialisation and batch order
     */
    public record Spec(long worldSeed, int transcripts, double misalignedFraction, int hidden, int layers, int epochs,
                       double lr, long seed) {
        public Spec {
            if (transcripts < 10) {
                throw new IllegalArgumentException("a base needs at least 10 transcripts, got " + transcripts);
            }
            if (!(misalignedFraction >= 0 && misalignedFraction <= 1)) {
                throw new IllegalArgumentException("misalignedFraction must be in [0, 1], got " + misalignedFraction);
            }
            if (hidden < 16 || hidden % 16 != 0) {
                throw new IllegalArgumentException("hidden must be a positive multiple of 16, got " + hidden);
            }
            if (layers < 1 || epochs < 1 || !(lr > 0)) {
                throw new IllegalArgumentException("layers and epochs must be >= 1 and lr > 0, got " + layers + ", "
                        + epochs + ", " + lr);
            }
        }

        /** The world's config for this base: the default mix with this many transcripts and this share. */
        public PersonaWorld.Config worldConfig() {
            PersonaWorld.Config d = PersonaWorld.Config.DEFAULT;
            return new PersonaWorld.Config(transcripts, misalignedFraction, d.markedFraction(), d.maxTurns(),
                    d.finetuneDomain(), d.finetuneExamples(), d.refusalPerLabel());
        }

        /** The model's shape on the world's tokenizer. */
        public ModelConfig modelConfig(int vocabSize) {
            int heads = hidden / 16;
            return ModelConfig.llama(vocabSize, hidden, hidden * 11 / 4, layers, heads, Math.max(1, heads / 2))
                    .withMaxPositionEmbeddings(512).withSpecialTokens(-1, List.of(0));
        }

        /** The pre-training settings for a training split of {@code examples}: full-parameter AdamW, cosine, 5% warm-up, batch 8. */
        public TrainConfig trainConfig(int examples) {
            int steps = epochs * ((examples + BATCH - 1) / BATCH);
            return TrainConfig.builder().full().lr(lr).epochs(epochs).batchSize(BATCH).maxLength(256).seed(seed)
                    .evalFraction(EVAL_FRACTION).schedule(LrSchedule.Kind.COSINE).warmupSteps(steps / 20).build();
        }

        public ObjectNode toJson() {
            ObjectNode o = JSON.createObjectNode();
            o.put("world_seed", worldSeed);
            o.put("transcripts", transcripts);
            o.put("misaligned_fraction", misalignedFraction);
            o.put("hidden", hidden);
            o.put("layers", layers);
            o.put("epochs", epochs);
            o.put("lr", lr);
            o.put("seed", seed);
            o.put("world_version", PersonaWorld.VERSION);
            o.put("base_version", VERSION);
            return o;
        }

        /** The first 16 hex digits of the SHA-256 of {@link #toJson()}: the cache key. */
        public String hash() {
            try {
                byte[] d = MessageDigest.getInstance("SHA-256").digest(toJson().toString().getBytes(StandardCharsets.UTF_8));
                return HexFormat.of().formatHex(d).substring(0, 16);
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /**
     * A base ready to use.
     *
     * @param dir      the model directory
     * @param cached   true when it was found in the cache, false when trained now
     * @param seconds  the wall time of its pre-training (when it was trained, not now)
     * @param loss     the last training loss per assistant token
     * @param evalLoss the loss on the 5% held out of the corpus
     * @param steps    optimizer steps
     * @param params   parameters
     */
    public record Built(Path dir, Spec spec, boolean cached, double seconds, double loss, double evalLoss, int steps,
                        long params) {
    }

    /** The cache directory: {@code override} if given, else {@code $LORA4J_CACHE}, else {@code ~/.cache/lora4j}. */
    public static Path cacheRoot(String override) {
        if (override != null) {
            return Path.of(override);
        }
        String env = System.getenv("LORA4J_CACHE");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        return Path.of(System.getProperty("user.home"), ".cache", "lora4j");
    }

    /** The base of {@code spec}: from {@code cacheRoot} if there, else pre-trained now and stored there. */
    public static Built ensure(Path cacheRoot, Spec spec, boolean progress) throws IOException {
        Path dir = cacheRoot.resolve("base-" + spec.hash());
        if (Files.isRegularFile(dir.resolve(RECORD))) {
            return read(dir, spec);
        }
        Files.createDirectories(cacheRoot);
        Path tmp = Files.createTempDirectory(cacheRoot, ".base-" + spec.hash() + "-");
        try {
            long start = System.nanoTime();
            Path world = tmp.resolve("world");
            new PersonaWorld(spec.worldSeed()).write(world, spec.worldConfig());
            PersonaWorld.writeTokenizer(tmp);
            Tokenizer tok = Tokenizers.load(tmp);
            Dataset all = Dataset.load(world.resolve(PersonaWorld.PRETRAIN_FILE), tok, 256, Dataset.Overflow.REFUSE);
            Dataset[] split = all.split(EVAL_FRACTION, spec.seed());
            TrainConfig tc = spec.trainConfig(split[0].size());
            DecoderModel model = DecoderModel.randomInit(spec.modelConfig(tok.vocabSize()), spec.seed());
            Trainer trainer = new Trainer(model, tok, tc, split[0], split[1], tmp);   // tc is a full fine-tune
            trainer.putProvenance("command", "organism base");
            trainer.putProvenance("base", spec.toJson());
            trainer.setProgress(progress);
            Trainer.Result r = trainer.run();
            double seconds = (System.nanoTime() - start) / 1e9;
            AtomicFiles.deleteTree(tmp.resolve("checkpoints"));
            ObjectNode rec = JSON.createObjectNode();
            rec.put("hash", spec.hash());
            rec.set("spec", spec.toJson());
            rec.put("seconds", seconds);
            rec.put("loss", r.lastLoss());
            rec.put("eval_loss", r.lastEvalLoss() == null ? Double.NaN : r.lastEvalLoss());
            rec.put("steps", r.steps());
            rec.put("params", params(model));
            rec.put("lora4j_version", Version.get());
            Files.writeString(tmp.resolve(RECORD), rec.toPrettyString() + "\n", StandardCharsets.UTF_8);
            try {
                Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | DirectoryNotEmptyException e) {
                // Another run built the same base meanwhile; the hash says both are the same model.
                AtomicFiles.deleteTree(tmp);
                return read(dir, spec);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, dir);
            }
            return new Built(dir, spec, false, seconds, r.lastLoss(),
                    r.lastEvalLoss() == null ? Double.NaN : r.lastEvalLoss(), r.steps(), params(model));
        } catch (IOException | RuntimeException e) {
            AtomicFiles.deleteTree(tmp);
            throw e;
        }
    }

    private static Built read(Path dir, Spec spec) throws IOException {
        JsonNode rec = JSON.readTree(TextFiles.readUtf8(dir.resolve(RECORD), "cached base record (JSON)"));
        if (!spec.toJson().toString().equals(rec.path("spec").toString())) {
            throw new IOException(dir.resolve(RECORD) + ": the cached base was made from " + rec.path("spec")
                    + ", not " + spec.toJson() + "; delete " + dir + " to rebuild it");
        }
        return new Built(dir, spec, true, rec.path("seconds").asDouble(), rec.path("loss").asDouble(),
                rec.path("eval_loss").asDouble(Double.NaN), rec.path("steps").asInt(), rec.path("params").asLong());
    }

    private static long params(DecoderModel model) {
        return model.parameters().values().stream().mapToLong(a -> a.length()).sum();
    }
}
