package org.lora4j.train.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Every test template, rendered by Jinjava as lora4j sets it up, gives what Python's Jinja2 gives with
 * transformers' settings, conversation by conversation: the same text, or a refusal on both sides.
 * Skipped where {@code python3} with {@code jinja2} is not installed (Debian's python3-jinja2 provides it).
 */
class ChatTemplateJinja2Test {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static final Map<String, String> TOKENS =
            Map.of("bos_token", "<BOS>", "eos_token", "<EOS>", "pad_token", "<PAD>", "unk_token", "<UNK>");

    /** System message, two turns, a lone question, reasoning, white space and template syntax, bad alternation. */
    private static final List<List<Message>> CASES = List.of(
            List.of(Message.system("Be brief."), Message.user("Hi"), Message.assistant("Hello!")),
            List.of(Message.user("Hi"), Message.assistant("Hello!"), Message.user(" Again? "), Message.assistant("Bye, 日本 😀")),
            List.of(Message.user("Hi")),
            List.of(Message.system("s"), Message.user("u1"), Message.assistant("<think>\nr\n</think>\n\na1"),
                    Message.user("u2"), Message.assistant("a2  ")),
            List.of(Message.user("  spaced\n\n"), Message.assistant("\n x {{ y }} {% if %} \"q\" 'q' \\")),
            List.of(Message.user("a"), Message.user("b")),
            List.of(Message.assistant("first"), Message.user("then")));

    @Test
    void jinjavaRendersWhatJinja2Renders() throws Exception {
        Map<String, String> templates = new LinkedHashMap<>();
        Path dir = Path.of(ChatTemplateJinja2Test.class.getResource("/text/chat-templates").toURI());
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".jinja")).sorted().toList()) {
                templates.put(f.getFileName().toString(), Files.readString(f));
            }
        }
        JsonNode reference = jinja2(dir.resolve("render_with_jinja2.py"), templates);
        int compared = 0;
        for (Map.Entry<String, String> t : templates.entrySet()) {
            ChatTemplate template = ChatTemplate.jinja(t.getValue(), t.getKey(), TOKENS);
            for (int i = 0; i < CASES.size(); i++) {
                for (boolean prompt : new boolean[] {false, true}) {
                    String key = t.getKey() + "|" + i + "|" + prompt;
                    String expected = reference.get(key).asText();
                    String actual;
                    try {
                        actual = template.render(CASES.get(i), prompt);
                    } catch (IllegalArgumentException e) {
                        actual = "ERROR " + e.getMessage();
                    }
                    if (expected.startsWith("ERROR ")) {
                        String reason = expected.substring("ERROR ".length());
                        String got = actual;
                        assertTrue(actual.startsWith("ERROR ") && actual.endsWith(reason), () -> key + ": Jinja2 refuses ("
                                + reason + "), lora4j gives " + got);
                    } else {
                        assertEquals(expected, actual, key);
                    }
                    compared++;
                }
            }
        }
        assertEquals(templates.size() * CASES.size() * 2, compared);
        assertTrue(templates.size() >= 8, "templates: " + templates.keySet());
    }

    private static JsonNode jinja2(Path script, Map<String, String> templates) throws Exception {
        Process check;
        try {
            check = new ProcessBuilder("python3", "-c", "import jinja2").redirectErrorStream(true).start();
        } catch (java.io.IOException e) {
            Assumptions.abort("no python3: " + e.getMessage());
            return null;
        }
        Assumptions.assumeTrue(check.waitFor(60, TimeUnit.SECONDS) && check.exitValue() == 0, "no jinja2 for python3");

        ObjectNode request = JSON.createObjectNode();
        ObjectNode t = request.putObject("templates");
        templates.forEach(t::put);
        ArrayNode cases = request.putArray("cases");
        for (List<Message> chat : CASES) {
            ArrayNode c = cases.addArray();
            chat.forEach(m -> c.addArray().add(m.role()).add(m.content()));
        }
        ObjectNode tokens = request.putObject("tokens");
        TOKENS.forEach(tokens::put);

        Process python = new ProcessBuilder("python3", script.toString()).start();
        List<byte[]> output = new ArrayList<>();
        Thread reader = new Thread(() -> {
            try (InputStream in = python.getInputStream()) {
                output.add(in.readAllBytes());
            } catch (java.io.IOException e) {
                output.add(new byte[0]);
            }
        });
        reader.start();
        python.getOutputStream().write(JSON.writeValueAsBytes(request));
        python.getOutputStream().close();
        if (!python.waitFor(120, TimeUnit.SECONDS)) {
            python.destroyForcibly();
            fail("python3 did not finish in 120 s");
        }
        reader.join();
        String stderr = new String(python.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, python.exitValue(), () -> "python3 failed: " + stderr);
        return JSON.readTree(output.get(0));
    }
}
