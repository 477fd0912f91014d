package org.lora4j.core;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A file that exists and can be read but whose content breaks its format: a safetensors header
 * that does not index its data, an {@code adapter_config.json} without {@code r}, a lora_A with no
 * lora_B. The message starts with the file's path and names the key or value at fault.
 *
 * <p>An {@link IOException}, so callers handle a bad file where they handle a missing one.
 */
public final class FileFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;

    FileFormatException(Path file, String problem) {
        super(Objects.requireNonNull(file, "file") + ": " + problem);
        this.file = file;
    }

    FileFormatException(Path file, String problem, Throwable cause) {
        this(file, problem);
        initCause(cause);
    }

    /** The file at fault. */
    public Path file() {
        return file;
    }
}
