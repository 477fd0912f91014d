package org.lora4j.train.text;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.lora4j.core.AtomicFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * What a model directory's {@code tokenizer_config.json} says about its tokenizer: the chat template and
 * the bos, eos, pad and unk tokens. Other keys are kept as they were, so that {@link #write} changes only
 * what lora4j manages.
 *
 * <p>A token is a string or, in transformers' files, an AddedToken object with a {@code content}. The
 * chat template is a string, or transformers' list of named templates, of which the one named
 * {@code default} is used; with none there, a {@code chat_template.jinja} beside it (what transformers
 * 4.43+ writes) is read.
 */
final class TokenizerConfig {

    static final String FILE = "tokenizer_config.json";
    static final String TEMPLATE_FILE = "chat_template.jinja";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The original content, or an empty object when there was no file. */
    private final ObjectNode raw;
    private final boolean present;
    private final ChatTemplate chatTemplate;
    private final Map<String, String> specialTokens;

    private TokenizerConfig(ObjectNode raw, boolean present, ChatTemplate chatTemplate, Map<String, String> specialTokens) {
        this.raw = raw;
        this.present = present;
        this.chatTemplate = chatTemplate;
        this.specialTokens = specialTokens;
    }

    /** No file: ChatML and no named tokens. */
    static TokenizerConfig none() {
        return new TokenizerConfig(JSON.createObjectNode(), false, ChatTemplate.chatml(), Map.of());
    }

    /** The {@code tokenizer_config.json} in {@code dir}, or {@link #none()} when there is none. */
    static TokenizerConfig read(Path dir) throws IOException {
        Path file = dir.resolve(FILE);
        Path templateFile = dir.resolve(TEMPLATE_FILE);
        if (!Files.isRegularFile(file)) {
            if (Files.isRegularFile(templateFile)) {
                String source = TextFiles.readUtf8(templateFile, "chat template");
                return new TokenizerConfig(JSON.createObjectNode(), false,
                        template(source, templateFile.toString(), Map.of()), Map.of());
            }
            return none();
        }
        JsonNode root;
        try {
            root = JSON.readTree(TextFiles.readUtf8(file, "tokenizer config"));
        } catch (JsonProcessingException e) {
            throw new IOException(file + ":" + TextFiles.jsonLocation(e).getLineNr() + ": not valid JSON at column "
                    + TextFiles.jsonLocation(e).getColumnNr() + ": " + TextFiles.jsonMessage(e), e);
        }
        try {
            if (root == null || !root.isObject()) {
                throw new IllegalArgumentException("the top level must be an object, got " + HfTokenizer.describe(root));
            }
            Map<String, String> tokens = new LinkedHashMap<>();
            for (String key : ChatTemplate.SPECIAL_TOKEN_VARIABLES) {
                String token = token(root.get(key), key);
                if (token != null) {
                    tokens.put(key, token);
                }
            }
            String source = templateSource(root.get("chat_template"));
            ChatTemplate template;
            if (source != null) {
                template = template(source, file.toString(), tokens);
            } else if (Files.isRegularFile(templateFile)) {
                template = template(TextFiles.readUtf8(templateFile, "chat template"), templateFile.toString(), tokens);
            } else {
                template = ChatTemplate.chatml();
            }
            return new TokenizerConfig((ObjectNode) root, true, template, Map.copyOf(tokens));
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage().startsWith(file.toString()) ? e.getMessage() : file + ": " + e.getMessage(), e);
        }
    }

    private static ChatTemplate template(String source, String name, Map<String, String> tokens) {
        return ChatTemplate.jinja(source, name, tokens);
    }

    /** A string, or an AddedToken object {@code {"content": ...}}; null when absent. */
    private static String token(JsonNode value, String key) {
        if (value == null || value.isNull()) {
            return null;
        }
        JsonNode content = value.isObject() ? value.get("content") : value;
        if (content == null || !content.isTextual()) {
            throw new IllegalArgumentException(key + " must be a string or an object with a string \"content\", got "
                    + HfTokenizer.describe(value));
        }
        return content.asText();
    }

    /** A string, or a list of {@code {"name", "template"}} objects of which "default" is taken; null when absent. */
    private static String templateSource(JsonNode value) {
        if (value == null || value.isNull()) {
            return null;
        }
        if (value.isTextual()) {
            return value.asText();
        }
        if (value.isArray()) {
            List<String> names = new ArrayList<>();
            for (int i = 0; i < value.size(); i++) {
                JsonNode entry = value.get(i);
                JsonNode name = entry.get("name");
                JsonNode template = entry.get("template");
                if (!entry.isObject() || name == null || !name.isTextual() || template == null || !template.isTextual()) {
                    throw new IllegalArgumentException("chat_template[" + i + "] must be an object with a string \"name\""
                            + " and a string \"template\", got " + HfTokenizer.describe(entry));
                }
                if (name.asText().equals("default")) {
                    return template.asText();
                }
                names.add(name.asText());
            }
            throw new IllegalArgumentException("chat_template lists templates " + names
                    + " but none named \"default\", the one lora4j uses");
        }
        throw new IllegalArgumentException("chat_template must be a string or a list of {\"name\", \"template\"}"
                + " objects, got " + HfTokenizer.describe(value));
    }

    /** Whether there was a {@code tokenizer_config.json}. */
    boolean present() {
        return present;
    }

    ChatTemplate chatTemplate() {
        return chatTemplate;
    }

    /** The eos token's string, if the file names one. */
    String eosToken() {
        return specialTokens.get("eos_token");
    }

    /**
     * The pad id of {@link Tokenizer#padTokenId()}: the file's pad token, else its eos token, where the
     * tokenizer has them as one token; else {@code <|endoftext|>}, else 0.
     */
    int padTokenId(Tokenizer tokenizer) {
        for (String key : new String[] {"pad_token", "eos_token"}) {
            String token = specialTokens.get(key);
            if (token != null) {
                OptionalInt id = singleId(tokenizer, token);
                if (id.isPresent()) {
                    return id.getAsInt();
                }
            }
        }
        return tokenizer.specialTokenId(ChatTemplate.END_OF_TEXT).orElse(0);
    }

    private static OptionalInt singleId(Tokenizer tokenizer, String token) {
        OptionalInt special = tokenizer.specialTokenId(token);
        if (special.isPresent() || token.isEmpty()) {
            return special;
        }
        int[] ids = tokenizer.encode(token);
        return ids.length == 1 ? OptionalInt.of(ids[0]) : OptionalInt.empty();
    }

    /**
     * Writes {@code dir/tokenizer_config.json} for {@code tokenizer}: the original keys, and the chat
     * template, bos, eos and pad tokens where the original had none (eos: {@code <|im_end|>} for ChatML,
     * whose turns end with it, else {@code <|endoftext|>}; pad: {@code <|endoftext|>}, else the eos token),
     * {@code tokenizer_class} {@code PreTrainedTokenizerFast} (the class that reads any tokenizer.json) and
     * {@code clean_up_tokenization_spaces} false, so decoding does not change the text.
     */
    void write(Path dir, Tokenizer tokenizer) throws IOException {
        ObjectNode out = raw.deepCopy();
        if (!out.hasNonNull("chat_template")) {
            out.put("chat_template", tokenizer.chatTemplate().source());
        }
        String eos = eosToken();
        if (eos == null) {
            eos = firstSpecial(tokenizer, ChatTemplate.IM_END, ChatTemplate.END_OF_TEXT);
        }
        String pad = specialTokens.get("pad_token");
        if (pad == null) {
            pad = firstSpecial(tokenizer, ChatTemplate.END_OF_TEXT);
            pad = pad != null ? pad : eos;
        }
        putIfAbsent(out, "bos_token", specialTokens.get("bos_token"));
        putIfAbsent(out, "eos_token", eos);
        putIfAbsent(out, "pad_token", pad);
        if (!out.has("tokenizer_class")) {
            out.put("tokenizer_class", "PreTrainedTokenizerFast");
        }
        out.put("clean_up_tokenization_spaces", false);
        AtomicFiles.writeString(dir.resolve(FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(out) + "\n");
    }

    private static void putIfAbsent(ObjectNode out, String key, String value) {
        if (!out.hasNonNull(key)) {
            out.put(key, value);
        }
    }

    private static String firstSpecial(Tokenizer tokenizer, String... tokens) {
        for (String token : tokens) {
            if (tokenizer.specialTokenId(token).isPresent()) {
                return token;
            }
        }
        return null;
    }
}
