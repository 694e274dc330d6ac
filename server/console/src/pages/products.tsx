// Products: the list, a new product, one product's model and signing keys.
import { useState } from 'preact/hooks';
import { api, enc, type Product } from '../api';
import { href } from '../router';
import { canChange, isAdmin, useSession } from '../session';
import { ErrorAlert, Loading, Page, Status, useAction, useLoad } from '../ui';

export function ProductsPage() {
  const session = useSession();
  const products = useLoad(() => api.get<Product[]>('/products'), []);
  return (
    <Page title="Products">
      <Loading loaded={products} />
      {products.data && (
        <table>
          <thead>
            <tr>
              <th scope="col">Product</th>
              <th scope="col">Name</th>
              <th scope="col">Manufacturer</th>
              <th scope="col">Signing keys</th>
            </tr>
          </thead>
          <tbody>
            {products.data.map((p) => (
              <tr key={p.product_id}>
                <td>
                  <a href={href('products', p.product_id)}>{p.product_id}</a>
                </td>
                <td>{p.name}</td>
                <td>{p.manufacturer}</td>
                <td>{p.keys.length}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {products.data?.length === 0 && <p>No products yet.</p>}
      {canChange(session.role) && <NewProduct onCreated={products.reload} />}
    </Page>
  );
}

function NewProduct({ onCreated }: { onCreated: () => void }) {
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const [manufacturer, setManufacturer] = useState('');
  const [model, setModel] = useState('');
  const [done, setDone] = useState('');
  const [run, act] = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    setDone('');
    void run(async () => {
      let parsed: unknown = undefined;
      if (model.trim()) {
        try {
          parsed = JSON.parse(model);
        } catch {
          throw new Error('The model is not valid JSON.');
        }
      }
      const p = await api.post<Product>('/products', {
        product_id: id || undefined,
        name,
        manufacturer: manufacturer || undefined,
        model: parsed,
      });
      setDone(`Product ${p.product_id} created.`);
      setId('');
      setName('');
      setManufacturer('');
      setModel('');
      onCreated();
    });
  };
  return (
    <details>
      <summary role="button" class="secondary">
        New product
      </summary>
      <form onSubmit={submit} class="narrow">
        <ErrorAlert error={act.error} />
        <label>
          Product ID (optional)
          <input value={id} onInput={(e) => setId(e.currentTarget.value)} />
        </label>
        <label>
          Name
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Manufacturer
          <input value={manufacturer} onInput={(e) => setManufacturer(e.currentTarget.value)} />
        </label>
        <label>
          Model (JSON, optional)
          <textarea rows={4} value={model} onInput={(e) => setModel(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={act.busy}>
          Create product
        </button>
        <Status text={done} />
      </form>
    </details>
  );
}

export function ProductPage({ id }: { id: string }) {
  const session = useSession();
  const product = useLoad(() => api.get<Product>(`/products/${enc(id)}`), [id]);
  const [pem, setPem] = useState('');
  const [mayDowngrade, setMayDowngrade] = useState(false);
  const [done, setDone] = useState('');
  const [run, act] = useAction();
  const addKey = (e: Event) => {
    e.preventDefault();
    setDone('');
    void run(async () => {
      const k = await api.post<{ key_id: string }>(`/products/${enc(id)}/keys`, {
        public_pem: pem,
        may_downgrade: mayDowngrade,
      });
      setPem('');
      setDone(`Key ${k.key_id} added.`);
      product.reload();
    });
  };
  const removeKey = (keyId: string) =>
    void run(async () => {
      if (!window.confirm(`Remove key ${keyId}? Packages signed by it can no longer be uploaded.`)) return;
      product.set(await api.del<Product>(`/products/${enc(id)}/keys/${enc(keyId)}`));
      setDone(`Key ${keyId} removed.`);
    });
  const p = product.data;
  return (
    <Page title={`Product ${id}`}>
      <Loading loaded={product} />
      <ErrorAlert error={act.error} />
      {p && (
        <>
          <dl class="props">
            <dt>Name</dt>
            <dd>{p.name}</dd>
            <dt>Manufacturer</dt>
            <dd>{p.manufacturer || '—'}</dd>
            <dt>Protocol</dt>
            <dd>{p.protocol}</dd>
          </dl>
          <p>
            <a href={href('devices') + `?product_id=${enc(id)}`}>Devices of this product</a>
          </p>
          <h2>Model</h2>
          <pre class="json" tabIndex={0} aria-label="Product model (JSON)">
            {JSON.stringify(p.model ?? null, null, 2)}
          </pre>
          <h2>Signing keys</h2>
          {p.keys.length === 0 ? (
            <p>No keys: no package of this product can be uploaded.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Key ID</th>
                  <th scope="col">May downgrade</th>
                  {isAdmin(session.role) && <th scope="col">Actions</th>}
                </tr>
              </thead>
              <tbody>
                {p.keys.map((k) => (
                  <tr key={k.key_id}>
                    <td>
                      <code>{k.key_id}</code>
                    </td>
                    <td>{k.may_downgrade ? 'yes' : 'no'}</td>
                    {isAdmin(session.role) && (
                      <td>
                        <button type="button" class="secondary" onClick={() => removeKey(k.key_id)} aria-label={`Remove key ${k.key_id}`}>
                          Remove
                        </button>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {isAdmin(session.role) && (
            <form onSubmit={addKey} class="narrow">
              <h3>Add a signing key</h3>
              <label>
                Public key (PEM)
                <textarea rows={5} required value={pem} onInput={(e) => setPem(e.currentTarget.value)} />
              </label>
              <label>
                <input type="checkbox" checked={mayDowngrade} onChange={(e) => setMayDowngrade(e.currentTarget.checked)} />
                May sign downgrades
              </label>
              <button type="submit" disabled={act.busy}>
                Add key
              </button>
            </form>
          )}
          <Status text={done} />
        </>
      )}
    </Page>
  );
}
