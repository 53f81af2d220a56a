"""Rindow's samples/neural-machine-translation-with-transformer.php, line by line in Python: a
Transformer (positional embeddings, self-, causal and cross-attention, feed-forward blocks)
translates French sentences into English; greedy decoding grows the output one token at a
time with shape inspection off, and the last cross-attention's scores are plotted per head.

    python examples/rindow/neural_machine_translation_with_transformer.py [--small] [--no-plot]

The sentence pairs are read as in neural_machine_translation_with_attention.py:
$TAPEGRAD_DATASETS/fra-eng/fra.txt, else fra-eng.zip there, downloaded when missing. The
weights are saved to (and, when the file exists, loaded from)
neural-machine-translation-with-transformer.model in the current directory (Rindow: beside
the script). ``--small`` (for the tests) reads 400 pairs and trains one encoder and one
decoder layer (d_model 32, 2 heads, dff 64) for 6 epochs in batches of 16, from a fixed seed;
its learning-rate schedule warms up over 200 steps instead of 4,000 (the run has 138).

Where the port differs: NumPy plays the MatrixOperator (no ``$mo`` arguments);
EngFraDataset.convert (unused, and broken in the PHP) is left out; the figures are saved as PNG
files (matplotlib's ``imshow`` puts the first row at the top, so the y labels are not reversed
as the PHP does for its plotter); ``--small`` keeps 10% of the pairs for validation (the PHP
1%, unused). After the samples the port prints the masked word accuracy on the validation pairs
(``val_accuracy=``) and how many of the ten greedy translations equal their targets
(``exact=``). The model is compiled with ``jit=False``: CrossAttention.call reads the attention
scores' values (``g.ndarray``) to keep them for the plot, which a compiled training step cannot
do (tapegrad raises a TracingError that says so); Rindow's steps are not compiled either.
"""

import math
import os
import sys
import time
import traceback
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

import tapegrad
from tapegrad import AbstractModel
from tapegrad.nn.data import Preprocessor, Tokenizer
from tapegrad.nn.optimizers import LearningRateSchedule

small = "--small" in sys.argv
plot = "--no-plot" not in sys.argv
if small:
    tapegrad.set_seed(0)  # reproducible runs in the tests
rng = np.random.default_rng(0 if small else None)  # Rindow: $mo->random()


# Download the file
class EngFraDataset:
    base_url = "http://www.manythings.org/anki/"
    download_file = "fra-eng.zip"

    def __init__(self, input_tokenizer=None, target_tokenizer=None):
        self.dataset_dir = self.get_dataset_dir()
        self.dataset_dir.mkdir(parents=True, exist_ok=True)
        self.preprocessor = Preprocessor()

    def get_rindow_dataset_dir(self):
        data_dir = os.environ.get("TAPEGRAD_DATASETS")
        if not data_dir:
            data_dir = str(Path.home() / ".tapegrad" / "datasets")
        return Path(data_dir)

    def get_dataset_dir(self):
        return self.get_rindow_dataset_dir() / "fra-eng"

    def download(self, filename):
        file_path = self.dataset_dir / filename
        member_file = "fra.txt"
        path = self.dataset_dir / member_file
        if path.exists():  # (Rindow downloads the archive even when it is extracted)
            return path
        if not file_path.exists():
            self.console(f"Downloading {filename} ... ")
            try:
                urllib.request.urlretrieve(self.base_url + filename, file_path)
            except OSError as exc:
                file_path.unlink(missing_ok=True)
                sys.exit(f"cannot download {self.base_url + filename} ({exc}): put {filename} or its member "
                         f"{member_file} (English<TAB>French<TAB>attribution lines) in {self.dataset_dir}")
            self.console("Done\n")
        self.console(f"Extract to:{self.dataset_dir}\n")
        with zipfile.ZipFile(file_path) as archive:
            archive.extract(member_file, self.dataset_dir)
        self.console("Done\n")
        return path

    def preprocess_sentence(self, w):
        return "<start> " + w + " <end>"

    def create_dataset(self, path, num_examples):
        contents = Path(path).read_text(encoding="utf-8")
        lines = contents.strip().split("\n")
        del contents
        en_sentences = []
        sp_sentences = []
        for line in lines:
            if num_examples is not None:
                num_examples -= 1
                if num_examples < 0:
                    break
            blocks = [w.strip() for w in line.split("\t")]
            en = self.preprocess_sentence(blocks[0])
            sp = self.preprocess_sentence(blocks[1])
            en_sentences.append(en)
            sp_sentences.append(sp)
        return [en_sentences, sp_sentences]

    def tokenize(self, lang, num_words=None, tokenizer=None):
        if tokenizer is None:
            tokenizer = Tokenizer(
                num_words=num_words,
                filters="\"'#$%&()*+,-./:;=@[\\]^_`{|}~\t\n",
                specials="?.!,¿",
            )
        tokenizer.fit_on_texts(lang)
        sequences = tokenizer.texts_to_sequences(lang)
        tensor = self.preprocessor.pad_sequences(sequences, padding="post")
        return [tensor, tokenizer]

    def console(self, message):
        sys.stderr.write(message)

    def load_data(self, path=None, num_examples=None, num_words=None):
        if path is None:
            path = self.download(self.download_file)
        # creating cleaned input, output pairs
        targ_lang, inp_lang = self.create_dataset(path, num_examples)

        input_tensor, inp_lang_tokenizer = self.tokenize(inp_lang, num_words)
        target_tensor, targ_lang_tokenizer = self.tokenize(targ_lang, num_words)
        num_input = input_tensor.shape[0]
        choice = rng.choice(num_input, num_input, replace=False)
        input_tensor = self.shuffle(input_tensor, choice)
        target_tensor = self.shuffle(target_tensor, choice)

        return [input_tensor, target_tensor, inp_lang_tokenizer, targ_lang_tokenizer]

    def shuffle(self, tensor, choice):
        result = np.zeros_like(tensor)
        for i in range(tensor.shape[0]):
            result[i] = tensor[choice[i]]
        return result


class PositionalEmbedding(AbstractModel):
    def __init__(self, builder, vocab_size, d_model, maximum_position_encoding=None, input_length=None,
                 name=None):
        super().__init__(builder, name=name)
        self.d_model = d_model
        if maximum_position_encoding is None:
            maximum_position_encoding = 256
        self.gradient = builder.gradient()
        nn = builder
        g = self.gradient

        self.embedding = nn.layers.Embedding(
            vocab_size,  # input_dim
            d_model,  # output_dim
            mask_zero=True,
            input_length=input_length,
            name=f"embedding.{name}",
        )
        self.inherit_mask = nn.layers.InheritMask(name=f"mask.{name}")

        self.pos_encoding = g.Variable(
            self.positional_encoding(max_length=maximum_position_encoding, depth=d_model),
            trainable=False,
            unbackpropagatable=True,
            name="posEncoding",
        )

    def positional_encoding(self, max_length, depth):
        K = self.backend
        if depth % 2 != 0:
            raise ValueError("depth must be a multiple of 2")
        depth = depth // 2

        positions = K.repeat(  # (maxLength, depth/2)
            K.range(max_length), depth, axis=1)
        depths = K.scale(1 / depth, K.range(depth))  # (depth/2)
        angle_rates = K.reciprocal(self.pow(10000, depths))  # (depth/2)
        angle_rads = K.mul(positions, angle_rates)  # (maxLength, depth/2)

        pos_encoding = K.concat(  # (maxLength, depth/2*2)
            [K.sin(angle_rads), K.cos(angle_rads)],
            axis=-1)

        return pos_encoding  # (maxLength, depth)

    def pow(self, x, y):
        K = self.backend
        if isinstance(x, (int, float)):
            x = K.fill(y.shape, x, dtype=y.dtype)
        return K.pow(x, y)

    def call(self, inputs):
        g = self.gradient
        # Embedding
        input_vect = self.embedding.forward(inputs)

        # positional Encoding
        input_shape = g.shape(inputs)
        length = g.get(input_shape, 1)
        x = g.scale(math.sqrt(self.d_model), input_vect)
        pos_encoding = g.get(self.pos_encoding, 0, length)
        x = g.add(x, pos_encoding)  # broadcast add
        x = self.inherit_mask.forward([x, input_vect])
        return x

    def compute_mask(self, *args):
        return self.embedding.compute_mask(*args)


class AbstractBaseAttention(AbstractModel):
    def __init__(self, nn, name=None, **args):
        super().__init__(nn, name=name)
        self.mha = nn.layers.MultiHeadAttention(**args, name=f"mha.{name}")
        self.layernorm = nn.layers.LayerNormalization(name=f"layernorm.{name}")
        self.add = nn.layers.Add(name=f"add.{name}")


class CrossAttention(AbstractBaseAttention):
    last_attn_scores = None

    def call(self, x, context, training=None):
        attn_output, attn_scores = self.mha.forward(
            [
                x,  # query
                context,  # value
                context,  # key
            ],
            training=training,
            return_attention_scores=True,
        )

        # Cache the attention scores for plotting later.
        self.last_attn_scores = self.builder.gradient().ndarray(attn_scores)

        x = self.add.forward([x, attn_output])
        x = self.layernorm.forward(x)
        return x


class GlobalSelfAttention(AbstractBaseAttention):
    def call(self, x, training=None):
        attn_output = self.mha.forward(
            [
                x,  # query=
                x,  # value=
                x,  # key=
            ],
            training=training,
        )
        x = self.add.forward([x, attn_output])
        x = self.layernorm.forward(x)
        return x


class CausalSelfAttention(AbstractBaseAttention):
    def call(self, x, training=None):
        attn_output = self.mha.forward(
            [
                x,  # query
                x,  # value
                x,  # key
            ],
            training=training,
            use_causal_mask=True,
        )
        x = self.add.forward([x, attn_output])
        x = self.layernorm.forward(x)
        return x


class FeedForward(AbstractModel):
    def __init__(self, nn, d_model, dff, dropout_rate=0.1, name=None):
        super().__init__(nn, name=name)
        self.seq = nn.models.Sequential([
            nn.layers.Dense(dff, activation="relu", name=f"ff1.{name}"),
            nn.layers.Dense(d_model, name=f"ff2.{name}"),
            nn.layers.Dropout(dropout_rate, name=f"dropout.{name}"),
        ])
        self.add = nn.layers.Add(name=f"add.{name}")
        self.layer_norm = nn.layers.LayerNormalization(name=f"layernorm.{name}")

    def call(self, x, training=None):
        x = self.add.forward([x, self.seq.forward(x, training=training)])
        x = self.layer_norm.forward(x)
        return x


class EncoderLayer(AbstractModel):
    def __init__(self, nn, d_model, num_heads, dff, dropout_rate=0.1, name=None):
        super().__init__(nn, name=name)
        self.self_attention = GlobalSelfAttention(
            nn,
            num_heads=num_heads,
            key_dim=d_model,
            dropout=dropout_rate,
            name=f"globalattn.{name}",
        )
        self.ffn = FeedForward(nn, d_model, dff, name=f"ffn.{name}")

    def call(self, x, training=None):
        x = self.self_attention.forward(x, training=training)
        x = self.ffn.forward(x, training=training)
        return x


class Encoder(AbstractModel):
    def __init__(self, nn, num_layers, d_model, num_heads, dff, vocab_size, dropout_rate=0.1, name=None):
        super().__init__(nn, name=name)
        self.d_model = d_model
        self.num_layers = num_layers

        self.pos_embedding = PositionalEmbedding(
            nn,
            vocab_size=vocab_size,
            d_model=d_model,
            name=f"posemb.{name}",
        )

        self.enc_layers = nn.gradient.modules()
        for i in range(num_layers):
            self.enc_layers.add(EncoderLayer(
                nn,
                d_model=d_model,
                num_heads=num_heads,
                dff=dff,
                dropout_rate=dropout_rate,
                name=f"enc_layer{i}.{name}",
            ))
        self.dropout = nn.layers.Dropout(dropout_rate, name=f"dropout.{name}")

    def call(self, x, training=None):
        # `x` is token-IDs shape: (batch, seq_len)
        x = self.pos_embedding.forward(x)  # Shape `(batch_size, seq_len, d_model)`.
        # Add dropout.
        x = self.dropout.forward(x, training=training)

        for enc_layer in self.enc_layers:
            x = enc_layer.forward(x, training=training)

        return x  # Shape `(batch_size, seq_len, d_model)`.


class DecoderLayer(AbstractModel):
    last_attn_scores = None

    def __init__(self, nn, d_model, num_heads, dff, dropout_rate=0.1, name=None):
        super().__init__(nn, name=name)
        self.causal_self_attention = CausalSelfAttention(
            nn,
            num_heads=num_heads,
            key_dim=d_model,
            dropout=dropout_rate,
            name=f"causalatten.{name}",
        )

        self.cross_attention = CrossAttention(
            nn,
            num_heads=num_heads,
            key_dim=d_model,
            dropout=dropout_rate,
            name=f"crossAttn.{name}",
        )

        self.ffn = FeedForward(
            nn,
            d_model,
            dff,
            name=f"ffn.{name}",
        )

    def call(self, x, context, training=None):
        x = self.causal_self_attention.forward(x, training=training)
        x = self.cross_attention.forward(x, context, training=training)

        # Cache the last attention scores for plotting later
        self.last_attn_scores = self.cross_attention.last_attn_scores

        x = self.ffn.forward(x, training=training)  # Shape `(batch_size, seq_len, d_model)`.
        return x


class Decoder(AbstractModel):
    last_attn_scores = None

    def __init__(self, nn, num_layers, d_model, num_heads, dff, vocab_size, dropout_rate=0.1, name=None):
        super().__init__(nn, name=name)
        self.d_model = d_model
        self.num_layers = num_layers

        self.pos_embedding = PositionalEmbedding(
            nn,
            vocab_size=vocab_size,
            d_model=d_model,
            name=f"posemb.{name}",
        )
        self.dropout = nn.layers.Dropout(dropout_rate, name=f"dropout.{name}")
        self.dec_layers = nn.gradient.modules()
        for i in range(num_layers):
            self.dec_layers.add(DecoderLayer(
                nn,
                d_model=d_model,
                num_heads=num_heads,
                dff=dff,
                dropout_rate=dropout_rate,
                name=f"dec_layer{i}.{name}",
            ))

        self.last_attn_scores = None

    def call(self, x, context, training=None):
        # `x` is token-IDs shape (batch, target_seq_len)
        x = self.pos_embedding.forward(x)  # (batch_size, target_seq_len, d_model)

        x = self.dropout.forward(x, training)

        for dec_layer in self.dec_layers:
            x = dec_layer.forward(x, context, training=training)

        self.last_attn_scores = dec_layer.last_attn_scores

        # The shape of x is (batch_size, target_seq_len, d_model).
        return x


class Transformer(AbstractModel):
    def __init__(self, nn, num_layers, d_model, num_heads, dff, input_vocab_size, target_vocab_size,
                 dropout_rate=0.1, name=None):
        if name is None:
            name = "transformer"
        super().__init__(nn, name=name)
        self.encoder = Encoder(
            nn,
            num_layers=num_layers,
            d_model=d_model,
            num_heads=num_heads,
            dff=dff,
            vocab_size=input_vocab_size,
            dropout_rate=dropout_rate,
            name=f"encoder.{name}",
        )

        self.decoder = Decoder(
            nn,
            num_layers=num_layers,
            d_model=d_model,
            num_heads=num_heads,
            dff=dff,
            vocab_size=target_vocab_size,
            dropout_rate=dropout_rate,
            name=f"decoder.{name}",
        )

        self.final_layer = nn.layers.Dense(target_vocab_size, name=f"final_layer.{name}")

    def call(self, context, x, training=None):
        # To use a Keras model with `.fit` you must pass all your inputs in the
        # first argument.

        context = self.encoder.forward(context, training=training)  # (batch_size, context_len, d_model)

        x = self.decoder.forward(x, context, training=training)  # (batch_size, target_len, d_model)

        # Final linear layer output.
        logits = self.final_layer.forward(x)  # (batch_size, target_len, target_vocab_size)

        # Return the final output and the attention weights.
        return logits


class Translator:
    def __init__(self, nn, transformer, max_out_length=None, start_voc_id=None, end_voc_id=None, inp_lang=None,
                 targ_lang=None, plt=None):
        self.builder = nn
        self.transformer = transformer
        self.max_out_length = max_out_length
        self.start_voc_id = start_voc_id
        self.end_voc_id = end_voc_id
        self.inp_lang = inp_lang
        self.targ_lang = targ_lang
        self.plt = plt

    def predict(self, sentence):
        g = self.builder.gradient()
        K = self.builder.backend()
        sentence = K.array(sentence)

        # The input sentence is Portuguese, hence adding the `<START>` and `<END>` tokens.
        encoder_input = K.expand_dims(sentence, axis=0)

        # As the output language is English, initialize the output with the
        # English `<START>` token.
        start = K.array([[self.start_voc_id]], dtype=np.int32)
        end = K.array([[self.end_voc_id]], dtype=np.int32)

        # output_array is required here , so that the dynamic-loop can be traced.
        output_array = K.zeros([self.max_out_length + 2, 1], dtype=np.int32)
        K.copy(start, output_array[0:1])
        output = output_array[0:1].reshape([1, 1])

        self.transformer.set_shape_inspection(False)
        for i in range(self.max_out_length):  # noqa: B007 (i is used after the loop, as in the PHP)
            output = g.Variable(output_array[0:i + 1].reshape([1, i + 1]))
            predictions = self.transformer.forward(encoder_input, output, training=False)

            # Select the last token from the `seq_len` dimension.
            predictions = K.squeeze(predictions, axis=0)
            predictions = predictions[i:i + 1]
            predicted_id = K.argmax(predictions, axis=-1)

            # Concatenate the `predicted_id` to the output which is given to the
            # decoder as its input.
            K.copy(predicted_id.reshape([1, 1]), output_array[i + 1:i + 2])

            if predicted_id.tolist()[0] == end.tolist()[0][0]:
                break
        else:
            i = self.max_out_length  # where PHP's for loop leaves its counter
        output_len = i + 2
        output = output_array[0:output_len]

        # The output shape is `(1, tokens)`.
        # prevents us from using the attention_weights that were
        # calculated on the last iteration of the loop.
        # So, recalculate them outside the loop.
        self.transformer.forward(
            encoder_input,
            output[0:output_len].reshape([1, output_len]),
            training=False,
        )
        self.transformer.set_shape_inspection(True)
        attention_weights = self.transformer.decoder.last_attn_scores

        output = output.reshape([1, output_len])
        output = K.ndarray(output)
        attention_weights = K.ndarray(attention_weights)
        return [output, attention_weights]

    def plot_attention(self, attention, sentence, predicted_sentence):
        plt = self.plt
        sentence_len = len(sentence)
        predict_len = len(predicted_sentence)
        num_heads = len(attention)
        images = attention[:num_heads, :predict_len, :sentence_len]
        rows = num_heads // 2
        fig, axes = plt.subplots(2, rows, squeeze=False)
        fig.subplots_adjust(top=0.8, bottom=0.1)  # Rindow: 'figure.topMargin'=>110
        axes = axes.T.ravel()  # Rindow numbers the axes down the columns
        for i, image in enumerate(images):
            axes[i].imshow(image, cmap="viridis", origin="upper")
            axes[i].set_xlabel(f"Head {i + 1}")
            if i // rows == 0:
                axes[i].set_xticks(np.arange(len(sentence)), sentence, rotation=90)
                axes[i].xaxis.set_ticks_position("top")
            else:
                axes[i].set_xticks([])
            if i % rows == 0:
                axes[i].set_yticks(np.arange(len(predicted_sentence)), predicted_sentence)
            else:
                axes[i].set_yticks([])
        return fig


class CustomSchedule(LearningRateSchedule):
    def __init__(self, d_model, warmup_steps=4000):
        self.d_model = float(d_model)
        self.warmup_steps = float(warmup_steps)

    def __call__(self, step):
        arg1 = 1 / math.sqrt(step)
        arg2 = step * (self.warmup_steps ** -1.5)
        lr = 1 / math.sqrt(self.d_model) * min(arg1, arg2)
        return lr

    def get_config(self):  # (tapegrad's schedules describe themselves)
        return {"d_model": self.d_model, "warmup_steps": self.warmup_steps}


class CustomLossFunction:
    def __init__(self, nn, targ_lang):
        self.nn = nn
        self.targ_lang = targ_lang
        self.gradient = nn.gradient()
        self.loss_object = nn.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="none",
        )

    def __call__(self, label, pred):
        g = self.gradient
        loss = self.loss_object.forward(label, pred)
        mask = g.greater(g.cast(label, dtype=np.float32), 0.0)
        loss = g.mul(loss, mask)
        loss = g.div(g.reduce_sum(loss), g.reduce_sum(mask))
        return loss


class CustomAccuracy:
    def __init__(self, nn):
        self.backend = nn.backend()
        self.nn = nn

    def __call__(self, label, pred):
        K = self.backend
        pred = K.argmax(pred, axis=-1)  # convert to token id from predicts

        match = K.equal(label, pred)  # compare to trues (int32 == int32)
        mask = K.cast(label, dtype=np.bool_)  # make mask
        match = K.cast(match, dtype=np.float32)
        match = K.masking(mask, match)  # masking matching results

        sum_match = K.scalar(K.sum(match))
        n = K.scalar(K.sum(mask))
        if n == 0:
            accuracy = 0
        else:
            accuracy = sum_match / n
        return accuracy


def make_labels(la, label_tensor):
    lebel_len, lebel_words = label_tensor.shape
    # label_tensor = label_tensor[:, 1:lebel_words]
    label_tensor = la.slice(
        label_tensor,
        [0, 1],  # start
        [-1, lebel_words - 1],  # size
    )
    filler = la.zeros([lebel_len], dtype=label_tensor.dtype)
    filler = filler.reshape([lebel_len, 1])
    # label_tensor = np.append(label_tensor, filler, axis=1)
    label_tensor = la.concat(
        [label_tensor, filler],
        axis=1,
    )
    return label_tensor


num_examples = 20000  # 20000 30000 50000
num_words = None  # 1024
epochs = 10  # 20
batch_size = 64  # 8
d_model = 256  # 64 128 256 512  // d_model embedding_dim
dff = 512  # 64  // units
num_layers = 4  # 4 6
num_heads = 8
dropout_rate = 0.1  # 0.1
warmup_steps = 4000
if small:
    num_examples, epochs, batch_size, d_model, dff, num_layers, num_heads = 400, 6, 16, 32, 64, 1, 2
    warmup_steps = 200

nn = tapegrad.NeuralNetworks()
K = nn.backend()
g = nn.gradient()
plt = None
if plot:
    try:
        import matplotlib
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plots)")
        plot = False

dataset = EngFraDataset()


print("Generating data...")
input_tensor, target_tensor, inp_lang, targ_lang = dataset.load_data(None, num_examples, num_words)
val_size = len(input_tensor) // (10 if small else 100)
train_size = len(input_tensor) - val_size
input_tensor_train = input_tensor[0:train_size]
target_tensor_train = target_tensor[0:train_size]
input_tensor_val = input_tensor[train_size:val_size + train_size]
target_tensor_val = target_tensor[train_size:val_size + train_size]

label_tensor_train = make_labels(K, target_tensor_train)
label_tensor_val = make_labels(K, target_tensor_val)

input_length = input_tensor.shape[1]
output_length = target_tensor.shape[1]
input_vocab_size = inp_lang.vocabulary_size()  # Rindow: numWords()
target_vocab_size = targ_lang.vocabulary_size()
corpus_size = len(input_tensor)

print(f"num_examples: {num_examples}")
print(f"num_words: {num_words}")
print(f"epoch: {epochs}")
print(f"batchSize: {batch_size}")
print(f"embedding_dim: {d_model}")
print(f"num_heads: {num_heads}")
print(f"dff: {dff}")
print(f"num_layers: {num_layers}")
print(f"Total questions: {corpus_size}")
print(f"Input  word dictionary: {input_vocab_size}({len(inp_lang.index_word) + 1})")  # numWords(true)
print(f"Target word dictionary: {target_vocab_size}({len(targ_lang.index_word) + 1})")
print(f"Input length: {input_length}")
print(f"Output length: {output_length}")

dataset = nn.data.NDArrayDataset(
    [input_tensor_train, target_tensor_train],
    tests=label_tensor_train, batch_size=1, shuffle=False,
)

print("device type: " + nn.device_type())

transformer = Transformer(
    nn=nn,
    num_layers=num_layers,
    d_model=d_model,  # d_model,
    num_heads=num_heads,
    dff=dff,
    input_vocab_size=input_vocab_size,  # input_vocab_size,
    target_vocab_size=target_vocab_size,  # target_vocab_size,
    dropout_rate=dropout_rate,
    name="transformer",
)

lossfunc = CustomLossFunction(nn, targ_lang)
accuracy_func = CustomAccuracy(nn)
learning_rate = CustomSchedule(d_model, warmup_steps)
optimizer = nn.optimizers.Adam(lr=learning_rate, beta1=0.9, beta2=0.98, epsilon=1e-9)

print("Compile model...")
transformer.compile(
    loss=lossfunc,
    optimizer=optimizer,
    metrics={"loss": "loss", "accuracy": accuracy_func},
    jit=False,  # (see the docstring)
)

transformer.build(
    g.ArraySpec([1, input_length], dtype=np.int32),
    g.ArraySpec([1, output_length], dtype=np.int32),
)  # just for summary
transformer.summary()

model_file_path = Path("neural-machine-translation-with-transformer.model")

if model_file_path.exists():
    print("Loading model...")
    transformer.load_weights_from_file(model_file_path)
else:
    print("Train model...")
    start_time = time.time()
    history = transformer.fit(
        [input_tensor_train, target_tensor_train],
        label_tensor_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=2 if small else 1,
        # validation_data=[[input_tensor_val, target_tensor_val], label_tensor_val],
        # callbacks=[checkpoint],
    )
    print(f"trainableVariables={len(transformer.trainable_variables())}")
    print(f"Variables={len(transformer.variables())}")
    trainint_time = time.time() - start_time
    print("Total training time: " + time.strftime("%H:%M:%S", time.gmtime(trainint_time)))
    transformer.save_weights_to_file(model_file_path)

    if plot:
        plt.figure()
        plt.plot(np.array(history["loss"]), label="loss")
        plt.legend()
        plt.title("seq2seq-transformer-translation")
        plt.savefig("neural-machine-translation-with-transformer.png")

translator = Translator(
    nn,
    transformer,
    max_out_length=output_length,
    start_voc_id=targ_lang.word_to_index("<start>"),
    end_voc_id=targ_lang.word_to_index("<end>"),
    inp_lang=inp_lang,
    targ_lang=targ_lang,
    plt=plt,
)

exact = 0
skip = train_size // 2
choice = rng.choice(train_size - skip, 10, replace=False)
try:
    for k, idx in enumerate(choice):
        question = input_tensor[idx + skip]
        predict, attention_plot = translator.predict(question)
        answer = target_tensor[idx + skip]

        sentence = inp_lang.sequences_to_texts([question])[0]
        predicted_sentence = targ_lang.sequences_to_texts(predict)[0]
        target_sentence = targ_lang.sequences_to_texts([answer])[0]
        print(f"Input:   {sentence}")
        print(f"Predict: {predicted_sentence}")
        print(f"Target:  {target_sentence}")
        print()
        exact += predicted_sentence == target_sentence

        seqs = [question, predict[0][1:len(predict[0])]]
        dicts = [inp_lang, targ_lang]
        texts = []
        for seq, dic in zip(seqs, dicts):
            words = []
            for id in seq:
                if id == 0:
                    break
                words.append(dic.index_to_word(id))
            texts.append(words)
        input_text, predict_text = texts
        if plot:
            fig = translator.plot_attention(attention_plot[0], input_text, predict_text)
            fig.savefig(f"neural-machine-translation-with-transformer-{k}.png")
            if matplotlib.get_backend().lower() != "agg":
                plt.show()
except Exception:
    traceback.print_exc(file=sys.stdout)
    print("Exception!!!")
    sys.exit(1)  # (the PHP goes on to its end)

# (not in the PHP) the word accuracy on the validation pairs and the exact translations above
loss, accuracy = transformer.evaluate([input_tensor_val, target_tensor_val], label_tensor_val, verbose=0)
print(f"val_accuracy={accuracy:.4f} exact={exact}/10")
