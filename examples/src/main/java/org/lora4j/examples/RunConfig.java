package org.lora4j.examples;

import org.lora4j.core.AtomicFiles;
import org.lora4j.train.text.TextFiles;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import picocli.CommandLine.IDefaultValueProvider;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A run described by a file: {@code lora4j sft --config run.yaml}. The file (YAML for .yaml/.yml,
 * JSON for .json) maps option names without their dashes to values ({@code lora_rank} and
 * {@code lora-rank} are one key); the command line overrides it. Every run then records its
 * resolved options in {@value #FILE_NAME}.json or .yaml in its output directory, which is valid
 * input to {@code --config}, so a past run can be repeated.
 *
 * <p>The file's values reach picocli as default values ({@link IDefaultValueProvider}), not as
 * arguments merged into argv: picocli then applies its own rule that a given option wins over a
 * default, a repeated option on the command line is still refused, and the file is checked here,
 * against the command's declared options, so every error names the file and the key.
 */
final class RunConfig {
    private RunConfig() {
    }

    /** The resolved config's name without extension; not config.json, which a model directory holds. */
    static final String FILE_NAME = "run-config";

    /** The {@code --config} option of every command that runs from a file; a mixin. */
    static final class ConfigOption {
        @picocli.CommandLine.Option(names = "--config", paramLabel = "FILE",
                description = "read options from a YAML (.yaml/.yml) or JSON (.json) file: keys are option names"
                        + " without the dashes (lora_rank or lora-rank), flags are booleans, lists are arrays or"
                        + " comma-separated; options given on the command line win. A run's own "
                        + FILE_NAME + ".json/.yaml repeats it (docs/cli.md)")
        Path file;
    }

    /** The format a run records its config in: the --config file's, JSON without one. */
    enum Format {
        JSON, YAML;

        static Format of(Path file) {
            if (file == null) {
                return JSON;
            }
            String n = file.getFileName().toString().toLowerCase(Locale.ROOT);
            if (n.endsWith(".yaml") || n.endsWith(".yml")) {
                return YAML;
            }
            if (n.endsWith(".json")) {
                return JSON;
            }
            throw new IllegalArgumentException("--config " + file + ": give a .yaml, .yml or .json file");
        }

        String extension() {
            return this == YAML ? ".yaml" : ".json";
        }

        ObjectMapper mapper() {
            ObjectMapper m = this == YAML
                    ? new YAMLMapper(YAMLFactory.builder().disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                    .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES).build())
                    : new ObjectMapper();
            // {"lr": 1, "lr": 2} keeps the last in Jackson by default: a silent loss, so an error.
            m.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
            return m;
        }
    }

    /** Where {@code --config FILE} stands in argv (after the command), or null when it is not there. */
    static Path find(String[] argv) {
        for (int i = 1; i < argv.length; i++) {
            if (argv[i].equals("--config") && i + 1 < argv.length) {
                return Path.of(argv[i + 1]);
            }
            if (argv[i].startsWith("--config=")) {
                return Path.of(argv[i].substring("--config=".length()));
            }
        }
        return null;
    }

    /**
     * Reads a config file against a command's options: every key must name one of them, once, with
     * a value of its type. Returns the values as picocli reads them from a command line, keyed by
     * the option's longest name; a null value means "not given" (a resolved config records it so).
     */
    static Map<String, String> read(Path file, CommandSpec spec) throws IOException {
        Format format = Format.of(file);
        if (Files.isDirectory(file)) {
            throw new IllegalArgumentException("--config " + file + " is a directory; give a .yaml or .json file");
        }
        if (!Files.exists(file)) {
            throw new IllegalArgumentException("--config " + file + ": no such file");
        }
        JsonNode root;
        try {
            root = format.mapper().readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(file + ": not valid " + format.name() + ": " + e.getOriginalMessage()
                    + location(e), e);
        }
        if (root == null || root.isMissingNode() || root.isNull()) {
            return Map.of();
        }
        if (!root.isObject()) {
            throw new IllegalArgumentException(file + ": a config is a mapping of option names to values, got "
                    + kind(root));
        }
        Map<String, String> values = new LinkedHashMap<>();
        Map<String, String> keyOf = new LinkedHashMap<>();
        String command = spec.name();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String key = e.getKey();
            JsonNode v = e.getValue();
            if (key.equals("command")) {
                if (!v.isTextual() || !v.asText().equals(command)) {
                    throw new IllegalArgumentException(file + ": key 'command' is " + v + ", but this is lora4j " + command
                            + "; a config file records the command it is for");
                }
                continue;
            }
            String name = "--" + key.replace('_', '-');
            OptionSpec o = spec.findOption(name);
            if (o == null || !name.equals(o.longestName()) || o.usageHelp() || o.versionHelp() || name.equals("--config")) {
                String near = nearest(key.replace('_', '-'), keys(spec));
                throw new IllegalArgumentException(file + ": unknown key '" + key + "' for lora4j " + command
                        + (near != null ? " (did you mean " + near + "?)"
                        : " (keys are its options without the dashes: " + String.join(", ", keys(spec)) + ")"));
            }
            String earlier = keyOf.put(name, key);
            if (earlier != null) {
                throw new IllegalArgumentException(file + ": keys '" + earlier + "' and '" + key + "' are both " + name
                        + "; give it once");
            }
            if (v.isNull() || (v.isArray() && v.isEmpty() && o.isMultiValue())) {
                continue;   // a resolved config records an option without a value as null; [] is no list either
            }
            values.put(name, text(file, key, o, v));
        }
        return values;
    }

    /** The value as picocli would read it from the command line, or an error naming the file and the key. */
    private static String text(Path file, String key, OptionSpec o, JsonNode v) {
        Class<?> type = o.type();
        String where = file + ": key '" + key + "'";
        if (o.isMultiValue()) {
            Class<?> element = o.auxiliaryTypes()[0];
            if (v.isArray()) {
                List<String> parts = new ArrayList<>();
                for (JsonNode item : v) {
                    String s = scalar(where + " element", element, item);
                    if (s.contains(",")) {
                        throw new IllegalArgumentException(where + ": element '" + s + "' holds a comma; give one value per element");
                    }
                    parts.add(s);
                }
                return String.join(",", parts);
            }
            if (v.isTextual() || v.isNumber()) {
                List<String> parts = new ArrayList<>();
                for (String s : v.asText().split(",", -1)) {
                    parts.add(scalar(where, element, new com.fasterxml.jackson.databind.node.TextNode(s.strip())));
                }
                return String.join(",", parts);   // "q_proj, v_proj": the items without the spaces
            }
            throw new IllegalArgumentException(where + " must be a list (an array, or comma-separated), got " + kind(v));
        }
        return scalar(where, type, v);
    }

    private static String scalar(String where, Class<?> type, JsonNode v) {
        if (type == boolean.class || type == Boolean.class) {
            if (!v.isBoolean()) {
                throw new IllegalArgumentException(where + " is a flag: give true or false, got " + kind(v));
            }
            return v.asText();
        }
        if (type == int.class || type == Integer.class || type == long.class || type == Long.class) {
            // YAML 1.1 reads some numbers as strings; a string holding an integer is that integer.
            String s = v.asText().strip();
            boolean ok = v.isIntegralNumber() || (v.isTextual() && s.matches("[-+]?\\d+"));
            if (ok && (type == int.class || type == Integer.class)) {
                try {
                    Integer.parseInt(s.startsWith("+") ? s.substring(1) : s);
                } catch (NumberFormatException e) {
                    ok = false;
                }
            }
            if (!ok) {
                throw new IllegalArgumentException(where + " must be an integer, got " + kind(v));
            }
            return s;
        }
        if (type == double.class || type == Double.class || type == float.class || type == Float.class) {
            // YAML 1.1 reads 2e-4 (no dot) as a string: a string holding a number is that number.
            if (v.isNumber()) {
                return v.asText();
            }
            if (v.isTextual()) {
                try {
                    Double.parseDouble(v.asText().strip());
                    return v.asText().strip();
                } catch (NumberFormatException e) {
                    // falls through to the error
                }
            }
            throw new IllegalArgumentException(where + " must be a number, got " + kind(v));
        }
        if (type.isEnum()) {
            if (v.isTextual()) {
                for (Object c : type.getEnumConstants()) {
                    if (((Enum<?>) c).name().equalsIgnoreCase(v.asText().strip())) {
                        return v.asText().strip();
                    }
                }
            }
            throw new IllegalArgumentException(where + " must be one of " + constants(type) + ", got " + kind(v));
        }
        // Text and paths: a scalar; a number is its text (a label, a layer list of one)
        if (v.isTextual() || v.isNumber()) {
            return v.asText();
        }
        if (type == String.class && v.isArray()) {
            // An option whose value is a comma list in text (--k 5,10,15, --layers 0,3): an array is that list.
            List<String> parts = new ArrayList<>();
            for (JsonNode item : v) {
                if (!item.isValueNode() || item.isNull()) {
                    throw new IllegalArgumentException(where + " must be a list of single values, got " + kind(item) + " in it");
                }
                parts.add(item.asText());
            }
            return String.join(",", parts);
        }
        throw new IllegalArgumentException(where + " must be a single value (text), got " + kind(v));
    }

    /** The picocli default-value provider serving a file's values; the command line overrides them. */
    static IDefaultValueProvider provider(Map<String, String> values) {
        return (ArgSpec arg) -> arg instanceof OptionSpec o ? values.get(o.longestName()) : null;
    }

    /**
     * Writes the command's resolved options (every option's effective value, defaults included,
     * after the command name) as {@value #FILE_NAME}.json or .yaml into {@code dir}, and returns the
     * file. Paths are made absolute, so the file repeats the run from any working directory.
     * {@code --resume} is left out: a resumed run is recorded as the run it continues, and a repeat
     * into a new directory must start afresh rather than continue the old one.
     */
    static Path write(CommandSpec spec, Path configFile, Path dir) throws IOException {
        return write(spec, configFile, dir, FILE_NAME);
    }

    /** As {@link #write(CommandSpec, Path, Path)}, named {@code stem} plus the format's extension. */
    static Path write(CommandSpec spec, Path configFile, Path dir, String stem) throws IOException {
        Format format = Format.of(configFile);
        ObjectMapper m = format.mapper();
        ObjectNode o = m.createObjectNode();
        o.put("command", spec.name());
        for (OptionSpec opt : spec.options()) {
            String name = opt.longestName();
            if (opt.usageHelp() || opt.versionHelp() || name.equals("--config") || name.equals("--resume")) {
                continue;
            }
            String key = name.substring(2);
            Object value = opt.getValue();
            put(o, key, value);
        }
        Path file = dir.resolve(stem + format.extension());
        Files.createDirectories(dir);
        AtomicFiles.writeString(file, m.writerWithDefaultPrettyPrinter().writeValueAsString(o)
                + (format == Format.JSON ? "\n" : ""));
        return file;
    }

    /** The work of a command that records its config; a file it does not finish in is its own failure. */
    interface Body {
        int run() throws IOException;
    }

    /**
     * Writes the resolved config into {@code dir}, then runs the command. If the command fails before
     * writing anything else there, the record is removed again, so the directory stays empty (or goes,
     * with the run directory's lock) and the same --out can be given again.
     */
    static int recorded(CommandSpec spec, Path configFile, Path dir, Body body) throws IOException {
        Path file = write(spec, configFile, dir);
        try {
            return body.run();
        } catch (IOException | RuntimeException | Error e) {
            try (var s = Files.list(dir)) {
                boolean alone = s.allMatch(p -> p.equals(file)
                        || p.getFileName().toString().equals(org.lora4j.train.trainer.RunDirectory.LOCK_FILE));
                if (alone) {
                    Files.deleteIfExists(file);
                }
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    private static void put(ObjectNode o, String key, Object value) {
        if (value == null) {
            o.putNull(key);
        } else if (value instanceof Boolean b) {
            o.put(key, b);
        } else if (value instanceof Integer i) {
            o.put(key, i);
        } else if (value instanceof Long l) {
            o.put(key, l);
        } else if (value instanceof Double d) {
            o.put(key, d);
        } else if (value instanceof Path p) {
            o.put(key, p.toAbsolutePath().normalize().toString());
        } else if (value instanceof Enum<?> e) {
            o.put(key, e.name().toLowerCase(Locale.ROOT));
        } else if (value instanceof Collection<?> c) {
            ArrayNode a = o.putArray(key);
            for (Object item : c) {
                if (item instanceof Double || item instanceof Float) {
                    a.add(((Number) item).doubleValue());
                } else if (item instanceof Number n) {
                    a.add(n.longValue());   // not in one ?: with the double: that would make every integer a double
                } else {
                    a.add(item instanceof Path p ? p.toAbsolutePath().normalize().toString() : String.valueOf(item));
                }
            }
        } else {
            o.put(key, value.toString());
        }
    }

    private static List<String> keys(CommandSpec spec) {
        List<String> keys = new ArrayList<>();
        for (OptionSpec o : spec.options()) {
            if (!o.usageHelp() && !o.versionHelp() && !o.longestName().equals("--config")) {
                keys.add(o.longestName().substring(2));
            }
        }
        return keys;
    }

    /** The key within two edits of {@code key}, the closest first; null when none is that close. */
    private static String nearest(String key, List<String> keys) {
        String best = null;
        int bestDistance = 3;
        for (String k : keys) {
            int d = TextFiles.editDistance(key, k);
            if (d < bestDistance) {
                best = k;
                bestDistance = d;
            }
        }
        return best;
    }

    private static String constants(Class<?> type) {
        List<String> names = new ArrayList<>();
        for (Object c : type.getEnumConstants()) {
            names.add(((Enum<?>) c).name().toLowerCase(Locale.ROOT));
        }
        return String.join(", ", names);
    }

    private static String kind(JsonNode v) {
        if (v.isObject()) {
            return "a mapping";
        }
        if (v.isArray()) {
            return "a list";
        }
        return v.isTextual() ? "'" + v.asText() + "'" : v.toString();
    }

    private static String location(JsonProcessingException e) {
        return e.getLocation() == null || e.getLocation().getLineNr() < 1 ? ""
                : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")";
    }
}
