package org.lora4j.train.model;

import org.lora4j.core.Safetensors;
import org.lora4j.core.SafetensorsFile;
import org.nd4j.linalg.api.buffer.DataType;
import org.lora4j.train.text.TextFiles;
import org.nd4j.linalg.api.ndarray.INDArray;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The weights of a Hugging Face checkpoint directory: {@code model.safetensors}, or the shards that
 * {@code model.safetensors.index.json} maps each key to. Each tensor is read once, on request.
 */
final class Checkpoint implements AutoCloseable {
    static final String SINGLE = "model.safetensors";
    static final String INDEX = "model.safetensors.index.json";

    private final Path dir;
    private final Map<String, String> keyToFile = new TreeMap<>();
    private final Map<String, SafetensorsFile> open = new LinkedHashMap<>();

    private Checkpoint(Path dir) {
        this.dir = dir;
    }

    static Checkpoint open(Path dir) throws IOException {
        Checkpoint c = new Checkpoint(dir);
        Path index = dir.resolve(INDEX);
        Path single = dir.resolve(SINGLE);
        if (Files.exists(index)) {
            JsonNode root;
            try {
                root = new ObjectMapper().readTree(TextFiles.readUtf8(index, "shard index"));
            } catch (JsonProcessingException e) {
                throw new IOException(index + ":" + TextFiles.jsonLocation(e).getLineNr() + ": not valid JSON at column "
                        + TextFiles.jsonLocation(e).getColumnNr() + ": " + TextFiles.jsonMessage(e), e);
            }
            JsonNode map = root == null ? null : root.get("weight_map");
            if (map == null || !map.isObject()) {
                throw new IOException(index + ": no 'weight_map' object");
            }
            for (var it = map.fields(); it.hasNext(); ) {
                var e = it.next();
                String shard = e.getValue().asText();
                // A shard is a file beside the index: a path would read outside the model directory.
                if (!e.getValue().isTextual() || shard.isEmpty() || shard.contains("/") || shard.contains("\\")
                        || shard.equals("..") || shard.equals(".")) {
                    throw new IOException(index + ": weight_map[" + TextFiles.quote(e.getKey()) + "] must name a shard file in "
                            + dir + ", got " + e.getValue());
                }
                c.keyToFile.put(e.getKey(), shard);
            }
            for (String file : new java.util.TreeSet<>(c.keyToFile.values())) {
                if (!Files.exists(dir.resolve(file))) {
                    throw new NoSuchFileException(dir.resolve(file).toString(), null,
                            "shard named by " + INDEX + " is missing");
                }
            }
        } else if (Files.exists(single)) {
            try (SafetensorsFile f = SafetensorsFile.open(single)) {
                for (String k : f.keys()) {
                    c.keyToFile.put(k, SINGLE);
                }
            }
        } else {
            throw new NoSuchFileException(dir.toString(), null, "the model directory has no weights: no " + SINGLE
                    + " and no " + INDEX + "; " + ModelConfig.MODEL_DIRECTORY_LAYOUT);
        }
        return c;
    }

    boolean has(String key) {
        return keyToFile.containsKey(key);
    }

    /** The tensor, checked against the expected shape, as the given type. */
    INDArray get(String key, long[] shape, DataType type) throws IOException {
        String file = keyToFile.get(key);
        if (file == null) {
            throw new IllegalArgumentException(dir + ": missing weight '" + key + "'");
        }
        SafetensorsFile f = open.get(file);
        if (f == null) {
            f = SafetensorsFile.open(dir.resolve(file));
            open.put(file, f);
        }
        if (!f.keys().contains(key)) {
            throw new IllegalArgumentException(dir.resolve(file) + ": missing weight '" + key
                    + "' (the index maps it to this file)");
        }
        long[] got = f.shape(key);
        if (!Arrays.equals(got, shape)) {
            throw new IllegalArgumentException(dir.resolve(file) + ": weight '" + key + "' has shape "
                    + Arrays.toString(got) + ", expected " + Arrays.toString(shape));
        }
        return f.get(key, type);
    }

    /** Writes the tensors as one {@code model.safetensors} with {@code {"format": "pt"}} metadata. */
    static void write(Path dir, Map<String, INDArray> tensors) throws IOException {
        Map<String, INDArray> c = new LinkedHashMap<>();
        tensors.forEach((k, v) -> c.put(k, v.dup('c')));
        Safetensors.write(dir.resolve(SINGLE), c, Map.of("format", "pt"));
    }

    @Override
    public void close() throws IOException {
        for (SafetensorsFile f : open.values()) {
            f.close();
        }
        open.clear();
    }
}
