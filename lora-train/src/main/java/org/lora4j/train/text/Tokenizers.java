package org.lora4j.train.text;

import com.fasterxml.jackson.databind.JsonNode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Objects;

/** Loads the tokenizer of a model directory. */
public final class Tokenizers {

    private static final Logger log = LoggerFactory.getLogger(Tokenizers.class);

    private Tokenizers() {
    }

    /**
     * Loads {@code tokenizer.json} from a model directory, or the given file: a {@link ByteTokenizer}
     * when the file is the one {@link ByteTokenizer#save} writes (pure Java, no native library),
     * otherwise an {@link HfTokenizer}, which the caller should close. The {@code tokenizer_config.json}
     * beside it gives its {@link Tokenizer#chatTemplate()} (ChatML when it names none) and its
     * {@link Tokenizer#padTokenId()}.
     *
     * @throws NoSuchFileException when there is no such file
     * @throws IOException         when it cannot be read or is not a valid tokenizer, or its
     *                             tokenizer_config.json or chat template is not valid; the message names the file
     */
    public static Tokenizer load(Path modelDirOrFile) throws IOException {
        Path file = HfTokenizer.resolveTokenizerFile(modelDirOrFile);
        String json = HfTokenizer.readTokenizerJson(file);
        JsonNode root = HfTokenizer.parseTokenizerJson(file, json);
        TokenizerConfig config = HfTokenizer.readConfig(file);
        if (ByteTokenizer.isOwnHuggingFaceJson(root)) {
            log.debug("{} is lora4j's byte tokenizer", file);
            return new ByteTokenizer(config);
        }
        HfTokenizer tokenizer = HfTokenizer.fromJson(file, json, root, config);
        log.debug("{} loaded through Hugging Face tokenizers, vocab {}", file, tokenizer.vocabSize());
        return tokenizer;
    }

    /**
     * Copies the tokenizer of model directory {@code from} into {@code to} as {@link Tokenizer#save}
     * writes it (tokenizer.json and tokenizer_config.json), for a new model directory made from another;
     * does nothing when {@code from} has no tokenizer.json.
     */
    public static void copy(Path from, Path to) throws IOException {
        Objects.requireNonNull(from, "from must not be null");
        Objects.requireNonNull(to, "to must not be null");
        if (!java.nio.file.Files.isRegularFile(from.resolve(HfTokenizer.TOKENIZER_FILE))) {
            return;
        }
        Tokenizer tokenizer = load(from);
        try {
            tokenizer.save(to);
        } finally {
            if (tokenizer instanceof AutoCloseable closeable) {
                try {
                    closeable.close();
                } catch (Exception e) {
                    log.debug("closing the tokenizer of {}", from, e);
                }
            }
        }
    }
}
