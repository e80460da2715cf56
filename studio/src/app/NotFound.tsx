import { Link } from 'react-router';

export function NotFound() {
  return (
    <main className="content">
      <h1>Page not found</h1>
      <p>
        <Link to="/">Back to the studio</Link>
      </p>
    </main>
  );
}
