// Packages: the list, and uploads by file picker or drag and drop, with what the server found
// (the signature's key, diff or full, source and target versions).
import { useRef, useState } from 'preact/hooks';
import { api, enc, query, type Package, type Product } from '../api';
import { canChange, useSession } from '../session';
import { ErrorAlert, KeyId, Loading, Page, Status, bytes, useAction, useLoad } from '../ui';

function Versions({ p }: { p: Package }) {
  return (
    <>
      {p.source_version ? `${p.source_version} → ` : ''}
      {p.version}
    </>
  );
}

export function PackagesPage() {
  const session = useSession();
  const [product, setProduct] = useState('');
  const products = useLoad(() => api.get<Product[]>('/products'), []);
  const packages = useLoad(() => api.get<Package[]>('/packages' + query({ product_id: product })), [product]);
  const [run, act] = useAction();
  const [done, setDone] = useState('');
  const remove = (p: Package) =>
    void run(async () => {
      if (!window.confirm(`Delete package ${p.package_id} (${p.file_name})?`)) return;
      await api.del(`/packages/${p.package_id}`);
      setDone(`Package ${p.package_id} deleted.`);
      packages.reload();
    });
  return (
    <Page title="Packages">
      {canChange(session.role) && (
        <Upload products={products.data ?? []} onUploaded={packages.reload} />
      )}
      <h2>Stored packages</h2>
      <label class="inline-field">
        Product
        <select value={product} onChange={(e) => setProduct(e.currentTarget.value)}>
          <option value="">All</option>
          {(products.data ?? []).map((p) => (
            <option key={p.product_id} value={p.product_id}>
              {p.product_id}
            </option>
          ))}
        </select>
      </label>
      <ErrorAlert error={act.error} />
      <Status text={done} />
      <Loading loaded={packages} />
      {packages.data && packages.data.length === 0 && <p>No packages.</p>}
      {packages.data && packages.data.length > 0 && (
        <table data-testid="packages-table">
          <thead>
            <tr>
              <th scope="col">ID</th>
              <th scope="col">Product</th>
              <th scope="col">File</th>
              <th scope="col">Kind</th>
              <th scope="col">Versions</th>
              <th scope="col">Size</th>
              <th scope="col">Signed by</th>
              {canChange(session.role) && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {packages.data.map((p) => (
              <tr key={p.package_id}>
                <td>{p.package_id}</td>
                <td>{p.product_id}</td>
                <td>{p.file_name}</td>
                <td>
                  {p.category === 'software' ? 'software' : p.kind}
                </td>
                <td>
                  <Versions p={p} />
                </td>
                <td>{bytes(p.size)}</td>
                <td>
                  <KeyId id={p.key_id} />
                </td>
                {canChange(session.role) && (
                  <td>
                    <button type="button" class="secondary" aria-label={`Delete package ${p.package_id}`} onClick={() => remove(p)}>
                      Delete
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

function Upload({ products, onUploaded }: { products: Product[]; onUploaded: () => void }) {
  const [product, setProduct] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [dragging, setDragging] = useState(false);
  const [result, setResult] = useState<Package | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const [run, act] = useAction();
  const chosen = product || products[0]?.product_id || '';
  const pick = (files: FileList | null | undefined) => {
    const f = files?.[0];
    if (f) {
      setFile(f);
      setResult(null);
      act.clear();
    }
  };
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      if (!file) throw new Error('Choose a package file first.');
      if (!chosen) throw new Error('Create a product first.');
      const p = await api.upload<Package>(`/products/${enc(chosen)}/packages${query({ file_name: file.name })}`, file);
      setResult(p);
      setFile(null);
      if (input.current) input.current.value = '';
      onUploaded();
    });
  };
  return (
    <form onSubmit={submit} aria-labelledby="upload-title" class="upload">
      <h2 id="upload-title">Upload a package</h2>
      <div class="grid">
        <label>
          Product
          <select value={chosen} onChange={(e) => setProduct(e.currentTarget.value)}>
            {products.map((p) => (
              <option key={p.product_id} value={p.product_id}>
                {p.product_id}
              </option>
            ))}
          </select>
        </label>
        <label>
          Package file
          <input ref={input} type="file" onChange={(e) => pick(e.currentTarget.files)} />
        </label>
      </div>
      <div
        class={`dropzone${dragging ? ' dragging' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          pick(e.dataTransfer?.files);
        }}
      >
        {file ? `${file.name} (${bytes(file.size)})` : 'Or drop a package file here.'}
      </div>
      <ErrorAlert error={act.error} />
      <button type="submit" aria-busy={act.busy} disabled={act.busy || !file}>
        Upload
      </button>
      {result && (
        <article role="status" data-testid="upload-result">
          <strong>Stored as package {result.package_id}.</strong> Signature verified with key{' '}
          <KeyId id={result.key_id} />; {result.category === 'software' ? 'software' : result.kind} package,{' '}
          <span data-testid="upload-versions">
            <Versions p={result} />
          </span>
          , {bytes(result.size)}.
        </article>
      )}
    </form>
  );
}
