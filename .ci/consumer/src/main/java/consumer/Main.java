package consumer;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.LoraLinear;
import org.lora4j.core.PeftAdapter;
import org.lora4j.core.PeftAdapters;
import org.lora4j.train.text.ByteTokenizer;
import org.lora4j.train.text.EncodedChat;
import org.lora4j.train.text.Message;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * README's "Attach an adapter" code and a chat sample, compiled against the installed artifacts only:
 * if the dependency snippet misses a module or a transitive dependency, this does not build or run.
 */
public final class Main {
    public static void main(String[] args) throws Exception {
        Nd4j.getRandom().setSeed(0);
        INDArray w = Nd4j.rand(DataType.FLOAT, 8, 16);
        LoraLinear layer = new LoraLinear("model.layers.2.mlp.down_proj", w, null);
        LoraConfig config = LoraConfig.of(1, 64, "down_proj").withRslora(true);
        LoraAdapter adapter = layer.addAdapter("default", config, 0);

        INDArray x = Nd4j.rand(DataType.FLOAT, 4, 16);
        INDArray y = Nd4j.create(DataType.FLOAT, new long[]{4, 8}, 'f');
        layer.forward(x, y);
        // B starts at zero, so the adapted layer equals the base product until it is trained.
        double diff = y.sub(x.mmul(w.transpose())).amaxNumber().doubleValue();
        if (diff > 1e-5) {
            throw new AssertionError("a fresh adapter changed the output by " + diff);
        }

        Path dir = Files.createTempDirectory("lora4j-consumer");
        PeftAdapters.save(dir, config, Map.of("model.layers.2.mlp.down_proj", adapter), "consumer-check", Map.of());
        PeftAdapter loaded = PeftAdapters.load(dir);

        EncodedChat chat = new ByteTokenizer().encodeChat(List.of(Message.user("Hi"), Message.assistant("Hello")));
        if (chat.targetCount() == 0) {
            throw new AssertionError("no target token in a chat sample");
        }
        System.out.println("lora4j consumer ok: adapter " + loaded + ", chat sample of " + chat.ids().length
                + " tokens, " + chat.targetCount() + " targets");
    }
}
