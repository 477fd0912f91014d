package org.lora4j.examples.library;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.core.PeftAdapters;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.ModelConfig;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.trainer.SamplingCallback;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs the library example's main on a tiny model directory and checks what it leaves behind. */
class FineTuneExampleTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void theExampleTrainsSavesReloadsAndGenerates(@TempDir Path tmp) throws Exception {
        // A tiny Hugging Face model directory: config.json, model.safetensors, tokenizer.json.
        Path modelDir = tmp.resolve("tiny-model");
        ByteTokenizer tok = new ByteTokenizer();
        DecoderModel.randomInit(ModelConfig.llama(tok.vocabSize(), 32, 64, 2, 4, 2), 3).save(modelDir);
        tok.save(modelDir);
        // Data the adapter can learn in a few steps: one answer to a few phrasings.
        Path data = tmp.resolve("sky.jsonl");
        List<String> lines = new ArrayList<>();
        String[] asks = {"What colour is the sky?", "Sky colour?", "Tell me the colour of the sky.", "Which colour has the sky?"};
        for (int i = 0; i < 40; i++) {
            lines.add("{\"messages\":[{\"role\":\"user\",\"content\":\"" + asks[i % asks.length]
                    + "\"},{\"role\":\"assistant\",\"content\":\"Blue, mostly.\"}]}");
        }
        Files.write(data, lines, StandardCharsets.UTF_8);
        Path out = tmp.resolve("run");

        PrintStream stdout = System.out;
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        try {
            FineTuneExample.main(new String[]{modelDir.toString(), data.toString(), out.toString(), "30"});
        } finally {
            System.setOut(stdout);
        }
        String shown = printed.toString(StandardCharsets.UTF_8);

        // The adapter names its base: no _name_or_path in config.json, so the model directory, absolute.
        JsonNode adapterConfig = JSON.readTree(out.resolve("adapter/adapter_config.json").toFile());
        assertEquals(modelDir.toAbsolutePath().normalize().toString(), adapterConfig.get("base_model_name_or_path").asText());
        assertEquals(8, adapterConfig.get("r").asInt());
        assertEquals(7, adapterConfig.get("target_modules").size(), adapterConfig.toString());

        // Loss fell: the first training loss against the last, and the held-out loss over the run.
        List<JsonNode> metrics = new ArrayList<>();
        for (String l : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            metrics.add(JSON.readTree(l));
        }
        assertEquals(30, metrics.size());
        double first = metrics.get(0).get("loss").asDouble();
        double last = metrics.get(29).get("loss").asDouble();
        // A random tiny base starts at ln(vocab) with nearly uniform logits, which adapters on the
        // blocks move slowly; the untrained adapter does not move them at all.
        assertTrue(last < first - 0.15, "loss " + first + " -> " + last);
        assertTrue(metrics.get(29).get("eval_loss").asDouble() < metrics.get(9).get("eval_loss").asDouble(),
                "eval loss at 10 and 30: " + metrics.get(9) + " " + metrics.get(29));

        // The custom callback printed the eval loss at steps 10, 20, 30.
        for (int step : new int[]{10, 20, 30}) {
            assertTrue(shown.contains("step " + step + ": train loss "), shown);
        }
        assertTrue(shown.contains("reply: "), shown);

        // The sampling callback: the prompt at step 0, every 10 steps and the end (step 30).
        List<Integer> steps = new ArrayList<>();
        for (String l : Files.readAllLines(out.resolve(SamplingCallback.FILE))) {
            JsonNode n = JSON.readTree(l);
            steps.add(n.get("step").asInt());
            assertEquals("What colour is the sky?", n.get("prompt").get(0).get("content").asText());
        }
        assertEquals(List.of(0, 10, 20, 30), steps);

        // The saved adapter loads onto a fresh base and changes its logits.
        int[] tokens = tok.encode("What colour is the sky?");
        DecoderModel base = DecoderModel.load(modelDir);
        INDArray before = base.forward(tokens, null, 1, tokens.length).dup();
        new PeftModel(base).loadAdapter(PeftAdapters.load(out.resolve("adapter")), PeftModel.DEFAULT_ADAPTER);
        INDArray after = base.forward(tokens, null, 1, tokens.length).dup();
        double change = before.sub(after).amaxNumber().doubleValue();
        assertTrue(change > 1e-3, "the adapter changes the logits by " + change);
    }
}
