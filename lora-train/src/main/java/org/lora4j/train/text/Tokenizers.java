package org.lora4j.train.text;

import com.google.gson.JsonObject;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Loads the tokenizer of a model directory. */
public final class Tokenizers {

    private static final Logger log = LoggerFactory.getLogger(Tokenizers.class);

    private Tokenizers() {
    }

    /**
     * Loads {@code tokenizer.json} from a model directory, or the given file: a {@link ByteTokenizer}
     * when the file is the one {@link ByteTokenizer#save} writes (pure Java, no native library),
     * otherwise an {@link HfTokenizer}, which the caller should close.
     *
     * @throws NoSuchFileException when there is no such file
     * @throws IOException         when it cannot be read or is not a valid tokenizer; the message names the file
     */
    public static Tokenizer load(Path modelDirOrFile) throws IOException {
        Path file = HfTokenizer.resolveTokenizerFile(modelDirOrFile);
        String json = HfTokenizer.readTokenizerJson(file);
        JsonObject root = HfTokenizer.parseTokenizerJson(file, json);
        if (ByteTokenizer.isOwnHuggingFaceJson(root)) {
            log.debug("{} is lora4j's byte tokenizer", file);
            return new ByteTokenizer();
        }
        HfTokenizer tokenizer = HfTokenizer.fromJson(file, json, root);
        log.debug("{} loaded through Hugging Face tokenizers, vocab {}", file, tokenizer.vocabSize());
        return tokenizer;
    }
}
